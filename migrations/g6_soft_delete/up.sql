-- g5 -> g6: soft delete. Every archived row keeps who deleted it, when and why.
-- The new columns are nullable and go last, so ADD COLUMN gives exactly the
-- fresh g6 layout without rebuilding the large tables.

ALTER TABLE "employees" ADD COLUMN "deleted_at" DATETIME;
ALTER TABLE "employees" ADD COLUMN "deleted_by" VARCHAR(255);
ALTER TABLE "employees" ADD COLUMN "deletion_reason" TEXT;
CREATE INDEX "employee_deleted_at" ON "employees" ("deleted_at");

ALTER TABLE "caces" ADD COLUMN "deleted_at" DATETIME;
ALTER TABLE "caces" ADD COLUMN "deleted_by" VARCHAR(255);
ALTER TABLE "caces" ADD COLUMN "deletion_reason" TEXT;
CREATE INDEX "caces_deleted_at" ON "caces" ("deleted_at");

ALTER TABLE "medical_visits" ADD COLUMN "deleted_at" DATETIME;
ALTER TABLE "medical_visits" ADD COLUMN "deleted_by" VARCHAR(255);
ALTER TABLE "medical_visits" ADD COLUMN "deletion_reason" TEXT;
CREATE INDEX "medicalvisit_deleted_at" ON "medical_visits" ("deleted_at");

ALTER TABLE "online_trainings" ADD COLUMN "deleted_at" DATETIME;
ALTER TABLE "online_trainings" ADD COLUMN "deleted_by" VARCHAR(255);
ALTER TABLE "online_trainings" ADD COLUMN "deletion_reason" TEXT;
CREATE INDEX "onlinetraining_deleted_at" ON "online_trainings" ("deleted_at");

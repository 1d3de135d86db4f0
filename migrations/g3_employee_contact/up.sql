-- g2 -> g3: employees get phone and email, and four filter indexes.
-- ADD COLUMN appends the columns after updated_at; a fresh g3 database has
-- them after avatar_path. Column order is restored by the g7 -> g8 rebuild
-- of employees (see docs/ARCHITECTURE.md, "What equal means").

ALTER TABLE "employees" ADD COLUMN "phone" VARCHAR(255);
ALTER TABLE "employees" ADD COLUMN "email" VARCHAR(255);
CREATE INDEX "employee_contract_type" ON "employees" ("contract_type");
CREATE INDEX "employee_current_status" ON "employees" ("current_status");
CREATE INDEX "employee_role" ON "employees" ("role");
CREATE INDEX "employee_workspace" ON "employees" ("workspace");

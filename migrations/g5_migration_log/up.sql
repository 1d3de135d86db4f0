-- g4 -> g5: the app's own record of applied migrations.

CREATE TABLE "migrations" (
    "id" INTEGER NOT NULL PRIMARY KEY,
    "name" VARCHAR(255) NOT NULL,
    "batch" INTEGER NOT NULL,
    "applied_at" DATETIME NOT NULL,
    "rollback_name" VARCHAR(255)
);
CREATE INDEX "migration_applied_at" ON "migrations" ("applied_at");
CREATE UNIQUE INDEX "migration_name" ON "migrations" ("name");

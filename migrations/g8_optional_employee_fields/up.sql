-- g7 -> g8: employees.contract_type and employees.entry_date become nullable.
-- Rebuilt the documented way (https://sqlite.org/lang_altertable.html#otheralter).
-- The rebuild also puts phone and email back in the fresh column order. Each row
-- keeps its rowid, so the check of kept values joins old and new rows on it.
-- caces, medical_visits, online_trainings and contracts reference employees by
-- name, so their foreign keys (ON DELETE CASCADE) follow the new table.

CREATE TABLE "new_employees" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "external_id" VARCHAR(255),
    "first_name" VARCHAR(255) NOT NULL,
    "last_name" VARCHAR(255) NOT NULL,
    "current_status" VARCHAR(255) NOT NULL,
    "workspace" VARCHAR(255) NOT NULL,
    "role" VARCHAR(255) NOT NULL,
    "contract_type" VARCHAR(255),
    "entry_date" DATE,
    "avatar_path" VARCHAR(255),
    "phone" VARCHAR(255),
    "email" VARCHAR(255),
    "created_at" DATETIME NOT NULL,
    "updated_at" DATETIME NOT NULL,
    "deleted_at" DATETIME,
    "deleted_by" VARCHAR(255),
    "deletion_reason" TEXT
);
INSERT INTO "new_employees" ("id", "external_id", "first_name", "last_name", "current_status", "workspace", "role", "contract_type", "entry_date", "avatar_path", "phone", "email", "created_at", "updated_at", "deleted_at", "deleted_by", "deletion_reason", "rowid")
    SELECT "id", "external_id", "first_name", "last_name", "current_status", "workspace", "role", "contract_type", "entry_date", "avatar_path", "phone", "email", "created_at", "updated_at", "deleted_at", "deleted_by", "deletion_reason", "rowid"
    FROM "employees";
DROP TABLE "employees";
ALTER TABLE "new_employees" RENAME TO "employees";
CREATE INDEX "employee_contract_type" ON "employees" ("contract_type");
CREATE INDEX "employee_current_status" ON "employees" ("current_status");
CREATE INDEX "employee_deleted_at" ON "employees" ("deleted_at");
CREATE UNIQUE INDEX "employee_external_id" ON "employees" ("external_id");
CREATE INDEX "employee_role" ON "employees" ("role");
CREATE INDEX "employee_workspace" ON "employees" ("workspace");

-- g1 -> g2: document_path becomes nullable on caces and medical_visits.
-- SQLite cannot drop a NOT NULL constraint in place, so both tables are
-- rebuilt the documented way (https://sqlite.org/lang_altertable.html#otheralter):
-- create new_X, copy every row, drop X, rename new_X to X, re-create X's indexes.
-- Each row keeps its rowid, so the check of kept values joins old and new rows on it.

CREATE TABLE "new_caces" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "employee_id" TEXT NOT NULL,
    "kind" VARCHAR(255) NOT NULL,
    "completion_date" DATE NOT NULL,
    "expiration_date" DATE NOT NULL,
    "document_path" VARCHAR(255),
    "created_at" DATETIME NOT NULL,
    FOREIGN KEY ("employee_id") REFERENCES "employees" ("id") ON DELETE CASCADE
);
INSERT INTO "new_caces" ("id", "employee_id", "kind", "completion_date", "expiration_date", "document_path", "created_at", "rowid")
    SELECT "id", "employee_id", "kind", "completion_date", "expiration_date", "document_path", "created_at", "rowid"
    FROM "caces";
DROP TABLE "caces";
ALTER TABLE "new_caces" RENAME TO "caces";
CREATE INDEX "caces_employee_id" ON "caces" ("employee_id");
CREATE INDEX "caces_employee_id_expiration_date" ON "caces" ("employee_id", "expiration_date");
CREATE INDEX "caces_expiration_date" ON "caces" ("expiration_date");

CREATE TABLE "new_medical_visits" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "employee_id" TEXT NOT NULL,
    "visit_type" VARCHAR(255) NOT NULL,
    "visit_date" DATE NOT NULL,
    "expiration_date" DATE NOT NULL,
    "result" VARCHAR(255) NOT NULL,
    "document_path" VARCHAR(255),
    "created_at" DATETIME NOT NULL,
    FOREIGN KEY ("employee_id") REFERENCES "employees" ("id") ON DELETE CASCADE
);
INSERT INTO "new_medical_visits" ("id", "employee_id", "visit_type", "visit_date", "expiration_date", "result", "document_path", "created_at", "rowid")
    SELECT "id", "employee_id", "visit_type", "visit_date", "expiration_date", "result", "document_path", "created_at", "rowid"
    FROM "medical_visits";
DROP TABLE "medical_visits";
ALTER TABLE "new_medical_visits" RENAME TO "medical_visits";
CREATE INDEX "medicalvisit_employee_id" ON "medical_visits" ("employee_id");
CREATE INDEX "medicalvisit_employee_id_expiration_date" ON "medical_visits" ("employee_id", "expiration_date");
CREATE INDEX "medicalvisit_expiration_date" ON "medical_visits" ("expiration_date");

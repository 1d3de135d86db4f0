-- The schema a fresh installation of generation g4 creates.

CREATE TABLE "app_locks" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "hostname" VARCHAR(255) NOT NULL,
    "username" VARCHAR(255),
    "locked_at" DATETIME NOT NULL,
    "last_heartbeat" DATETIME NOT NULL,
    "process_id" INTEGER NOT NULL,
    "app_version" VARCHAR(255)
);
CREATE INDEX "applock_hostname" ON "app_locks" ("hostname");
CREATE INDEX "applock_last_heartbeat" ON "app_locks" ("last_heartbeat");
CREATE INDEX "applock_locked_at" ON "app_locks" ("locked_at");
CREATE TABLE "caces" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "employee_id" TEXT NOT NULL,
    "kind" VARCHAR(255) NOT NULL,
    "completion_date" DATE NOT NULL,
    "expiration_date" DATE NOT NULL,
    "document_path" VARCHAR(255),
    "created_at" DATETIME NOT NULL,
    FOREIGN KEY ("employee_id") REFERENCES "employees" ("id") ON DELETE CASCADE
);
CREATE INDEX "caces_employee_id" ON "caces" ("employee_id");
CREATE INDEX "caces_employee_id_expiration_date" ON "caces" ("employee_id", "expiration_date");
CREATE INDEX "caces_expiration_date" ON "caces" ("expiration_date");
CREATE TABLE "employees" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "external_id" VARCHAR(255),
    "first_name" VARCHAR(255) NOT NULL,
    "last_name" VARCHAR(255) NOT NULL,
    "current_status" VARCHAR(255) NOT NULL,
    "workspace" VARCHAR(255) NOT NULL,
    "role" VARCHAR(255) NOT NULL,
    "contract_type" VARCHAR(255) NOT NULL,
    "entry_date" DATE NOT NULL,
    "avatar_path" VARCHAR(255),
    "phone" VARCHAR(255),
    "email" VARCHAR(255),
    "created_at" DATETIME NOT NULL,
    "updated_at" DATETIME NOT NULL
);
CREATE INDEX "employee_contract_type" ON "employees" ("contract_type");
CREATE INDEX "employee_current_status" ON "employees" ("current_status");
CREATE UNIQUE INDEX "employee_external_id" ON "employees" ("external_id");
CREATE INDEX "employee_role" ON "employees" ("role");
CREATE INDEX "employee_workspace" ON "employees" ("workspace");
CREATE TABLE "medical_visits" (
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
CREATE INDEX "medicalvisit_employee_id" ON "medical_visits" ("employee_id");
CREATE INDEX "medicalvisit_employee_id_expiration_date" ON "medical_visits" ("employee_id", "expiration_date");
CREATE INDEX "medicalvisit_expiration_date" ON "medical_visits" ("expiration_date");
CREATE INDEX "medicalvisit_result" ON "medical_visits" ("result");
CREATE TABLE "online_trainings" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "employee_id" TEXT NOT NULL,
    "title" VARCHAR(255) NOT NULL,
    "completion_date" DATE NOT NULL,
    "validity_months" INTEGER,
    "expiration_date" DATE,
    "certificate_path" VARCHAR(255),
    "created_at" DATETIME NOT NULL,
    FOREIGN KEY ("employee_id") REFERENCES "employees" ("id") ON DELETE CASCADE
);
CREATE INDEX "onlinetraining_employee_id" ON "online_trainings" ("employee_id");
CREATE INDEX "onlinetraining_employee_id_expiration_date" ON "online_trainings" ("employee_id", "expiration_date");
CREATE INDEX "onlinetraining_expiration_date" ON "online_trainings" ("expiration_date");

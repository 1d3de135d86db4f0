-- The schema a fresh installation of generation g7 creates.

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
    "deleted_at" DATETIME,
    "deleted_by" VARCHAR(255),
    "deletion_reason" TEXT,
    FOREIGN KEY ("employee_id") REFERENCES "employees" ("id") ON DELETE CASCADE
);
CREATE INDEX "caces_deleted_at" ON "caces" ("deleted_at");
CREATE INDEX "caces_employee_id" ON "caces" ("employee_id");
CREATE INDEX "caces_employee_id_expiration_date" ON "caces" ("employee_id", "expiration_date");
CREATE INDEX "caces_expiration_date" ON "caces" ("expiration_date");
CREATE TABLE "contract_amendments" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "contract_id" TEXT NOT NULL,
    "amendment_date" DATE NOT NULL,
    "amendment_type" VARCHAR(255) NOT NULL,
    "description" TEXT NOT NULL,
    "old_field_name" VARCHAR(255) NOT NULL,
    "old_value" VARCHAR(255),
    "new_value" VARCHAR(255),
    "document_path" VARCHAR(255),
    "created_at" DATETIME NOT NULL,
    "created_by" VARCHAR(255),
    FOREIGN KEY ("contract_id") REFERENCES "contracts" ("id") ON DELETE CASCADE
);
CREATE INDEX "contractamendment_amendment_date" ON "contract_amendments" ("amendment_date");
CREATE INDEX "contractamendment_contract_id" ON "contract_amendments" ("contract_id");
CREATE TABLE "contracts" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "employee_id" TEXT NOT NULL,
    "contract_type" VARCHAR(255) NOT NULL,
    "start_date" DATE NOT NULL,
    "end_date" DATE,
    "trial_period_end" DATE,
    "gross_salary" DECIMAL(10, 2),
    "weekly_hours" DECIMAL(4, 2) NOT NULL,
    "position" VARCHAR(255) NOT NULL,
    "department" VARCHAR(255) NOT NULL,
    "manager" VARCHAR(255),
    "status" VARCHAR(255) NOT NULL,
    "end_reason" VARCHAR(255),
    "contract_document_path" VARCHAR(255),
    "created_at" DATETIME NOT NULL,
    "updated_at" DATETIME NOT NULL,
    "created_by" VARCHAR(255),
    "notes" TEXT,
    FOREIGN KEY ("employee_id") REFERENCES "employees" ("id") ON DELETE CASCADE
);
CREATE INDEX "contract_contract_type" ON "contracts" ("contract_type");
CREATE INDEX "contract_department" ON "contracts" ("department");
CREATE INDEX "contract_employee_id" ON "contracts" ("employee_id");
CREATE INDEX "contract_end_date" ON "contracts" ("end_date");
CREATE INDEX "contract_position" ON "contracts" ("position");
CREATE INDEX "contract_start_date" ON "contracts" ("start_date");
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
    "updated_at" DATETIME NOT NULL,
    "deleted_at" DATETIME,
    "deleted_by" VARCHAR(255),
    "deletion_reason" TEXT
);
CREATE INDEX "employee_contract_type" ON "employees" ("contract_type");
CREATE INDEX "employee_current_status" ON "employees" ("current_status");
CREATE INDEX "employee_deleted_at" ON "employees" ("deleted_at");
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
    "deleted_at" DATETIME,
    "deleted_by" VARCHAR(255),
    "deletion_reason" TEXT,
    FOREIGN KEY ("employee_id") REFERENCES "employees" ("id") ON DELETE CASCADE
);
CREATE INDEX "medicalvisit_deleted_at" ON "medical_visits" ("deleted_at");
CREATE INDEX "medicalvisit_employee_id" ON "medical_visits" ("employee_id");
CREATE INDEX "medicalvisit_employee_id_expiration_date" ON "medical_visits" ("employee_id", "expiration_date");
CREATE INDEX "medicalvisit_expiration_date" ON "medical_visits" ("expiration_date");
CREATE INDEX "medicalvisit_result" ON "medical_visits" ("result");
CREATE TABLE "migrations" (
    "id" INTEGER NOT NULL PRIMARY KEY,
    "name" VARCHAR(255) NOT NULL,
    "batch" INTEGER NOT NULL,
    "applied_at" DATETIME NOT NULL,
    "rollback_name" VARCHAR(255)
);
CREATE INDEX "migration_applied_at" ON "migrations" ("applied_at");
CREATE UNIQUE INDEX "migration_name" ON "migrations" ("name");
CREATE TABLE "online_trainings" (
    "id" TEXT NOT NULL PRIMARY KEY,
    "employee_id" TEXT NOT NULL,
    "title" VARCHAR(255) NOT NULL,
    "completion_date" DATE NOT NULL,
    "validity_months" INTEGER,
    "expiration_date" DATE,
    "certificate_path" VARCHAR(255),
    "created_at" DATETIME NOT NULL,
    "deleted_at" DATETIME,
    "deleted_by" VARCHAR(255),
    "deletion_reason" TEXT,
    FOREIGN KEY ("employee_id") REFERENCES "employees" ("id") ON DELETE CASCADE
);
CREATE INDEX "onlinetraining_deleted_at" ON "online_trainings" ("deleted_at");
CREATE INDEX "onlinetraining_employee_id" ON "online_trainings" ("employee_id");
CREATE INDEX "onlinetraining_employee_id_expiration_date" ON "online_trainings" ("employee_id", "expiration_date");
CREATE INDEX "onlinetraining_expiration_date" ON "online_trainings" ("expiration_date");

-- g6 -> g7: employment contracts and their amendments.

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

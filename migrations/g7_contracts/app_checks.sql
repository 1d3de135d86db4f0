-- What Wareflow EMS v2.1.3 and v2.1.4 run at start-up and on its main screens, as its peewee
-- models issue it. wems-upgrade runs every statement, in order, on the upgraded database inside
-- the migration's transaction, under a SAVEPOINT that is rolled back: nothing written here stays.
-- Every row a SELECT returns is read. An INSERT, UPDATE or DELETE must change at least one row.
-- Bindings: :today (YYYY-MM-DD), :now (YYYY-MM-DD HH:MM:SS.ffffff), :alert_days (the app's default
-- warning threshold, 30), :user, :hostname, :process_id, and fresh ids :lock_id, :employee_id,
-- :external_id, :caces_id, :contract_id.

-- name: start-up: read the applied migrations
SELECT "t1"."id", "t1"."name", "t1"."batch", "t1"."applied_at", "t1"."rollback_name"
FROM "migrations" AS "t1" ORDER BY "t1"."id";

-- name: start-up: take the app lock
INSERT INTO "app_locks" ("id", "hostname", "username", "locked_at", "last_heartbeat", "process_id", "app_version")
VALUES (:lock_id, :hostname, :user, :now, :now, :process_id, '2.1.4');

-- name: start-up: list the app locks
SELECT "t1"."id", "t1"."hostname", "t1"."username", "t1"."locked_at", "t1"."last_heartbeat",
       "t1"."process_id", "t1"."app_version"
FROM "app_locks" AS "t1" ORDER BY "t1"."locked_at" DESC;

-- name: list active employees
SELECT "t1".* FROM "employees" AS "t1"
WHERE "t1"."deleted_at" IS NULL AND "t1"."current_status" = 'actif'
ORDER BY "t1"."last_name", "t1"."first_name";

-- name: list inactive employees
SELECT "t1".* FROM "employees" AS "t1"
WHERE "t1"."deleted_at" IS NULL AND "t1"."current_status" = 'inactif'
ORDER BY "t1"."last_name", "t1"."first_name";

-- name: list archived employees
SELECT "t1".* FROM "employees" AS "t1"
WHERE "t1"."deleted_at" IS NOT NULL
ORDER BY "t1"."deleted_at" DESC;

-- name: list the employees' CACES
SELECT "t1".*, "t2"."first_name", "t2"."last_name"
FROM "caces" AS "t1" INNER JOIN "employees" AS "t2" ON ("t1"."employee_id" = "t2"."id")
WHERE "t1"."deleted_at" IS NULL AND "t2"."deleted_at" IS NULL
ORDER BY "t2"."last_name", "t2"."first_name", "t1"."expiration_date";

-- name: list the employees' medical visits
SELECT "t1".*, "t2"."first_name", "t2"."last_name"
FROM "medical_visits" AS "t1" INNER JOIN "employees" AS "t2" ON ("t1"."employee_id" = "t2"."id")
WHERE "t1"."deleted_at" IS NULL AND "t2"."deleted_at" IS NULL
ORDER BY "t2"."last_name", "t2"."first_name", "t1"."visit_date" DESC;

-- name: list the employees' online trainings
SELECT "t1".*, "t2"."first_name", "t2"."last_name"
FROM "online_trainings" AS "t1" INNER JOIN "employees" AS "t2" ON ("t1"."employee_id" = "t2"."id")
WHERE "t1"."deleted_at" IS NULL AND "t2"."deleted_at" IS NULL
ORDER BY "t2"."last_name", "t2"."first_name", "t1"."completion_date" DESC;

-- name: list the employees' contracts and amendments
SELECT "t1".*, "t2"."first_name", "t2"."last_name", "t3"."id", "t3"."amendment_date",
       "t3"."amendment_type", "t3"."description", "t3"."old_field_name", "t3"."old_value", "t3"."new_value"
FROM "contracts" AS "t1" INNER JOIN "employees" AS "t2" ON ("t1"."employee_id" = "t2"."id")
LEFT OUTER JOIN "contract_amendments" AS "t3" ON ("t3"."contract_id" = "t1"."id")
WHERE "t2"."deleted_at" IS NULL
ORDER BY "t2"."last_name", "t2"."first_name", "t1"."start_date" DESC, "t3"."amendment_date";

-- name: alerts: CACES expired or expiring soon
SELECT "t1"."id", "t1"."kind", "t1"."expiration_date", "t2"."id", "t2"."first_name", "t2"."last_name"
FROM "caces" AS "t1" INNER JOIN "employees" AS "t2" ON ("t1"."employee_id" = "t2"."id")
WHERE "t1"."deleted_at" IS NULL AND "t2"."deleted_at" IS NULL
  AND "t1"."expiration_date" <= date(:today, '+' || :alert_days || ' days')
ORDER BY "t1"."expiration_date";

-- name: alerts: medical visits due
SELECT "t1"."id", "t1"."visit_type", "t1"."result", "t1"."expiration_date", "t2"."id", "t2"."first_name",
       "t2"."last_name"
FROM "medical_visits" AS "t1" INNER JOIN "employees" AS "t2" ON ("t1"."employee_id" = "t2"."id")
WHERE "t1"."deleted_at" IS NULL AND "t2"."deleted_at" IS NULL
  AND "t1"."expiration_date" <= date(:today, '+' || :alert_days || ' days')
ORDER BY "t1"."expiration_date";

-- name: alerts: online trainings expiring
SELECT "t1"."id", "t1"."title", "t1"."expiration_date", "t2"."id", "t2"."first_name", "t2"."last_name"
FROM "online_trainings" AS "t1" INNER JOIN "employees" AS "t2" ON ("t1"."employee_id" = "t2"."id")
WHERE "t1"."deleted_at" IS NULL AND "t2"."deleted_at" IS NULL AND "t1"."expiration_date" IS NOT NULL
  AND "t1"."expiration_date" <= date(:today, '+' || :alert_days || ' days')
ORDER BY "t1"."expiration_date";

-- name: alerts: contracts and trial periods ending
SELECT "t1"."id", "t1"."contract_type", "t1"."end_date", "t1"."trial_period_end", "t2"."id",
       "t2"."first_name", "t2"."last_name"
FROM "contracts" AS "t1" INNER JOIN "employees" AS "t2" ON ("t1"."employee_id" = "t2"."id")
WHERE "t1"."status" = 'active' AND "t2"."deleted_at" IS NULL
  AND (("t1"."end_date" IS NOT NULL AND "t1"."end_date" <= date(:today, '+' || :alert_days || ' days'))
    OR ("t1"."trial_period_end" IS NOT NULL AND "t1"."trial_period_end" BETWEEN :today
        AND date(:today, '+' || :alert_days || ' days')))
ORDER BY coalesce("t1"."end_date", "t1"."trial_period_end");

-- name: add an employee
INSERT INTO "employees" ("id", "external_id", "first_name", "last_name", "current_status", "workspace", "role",
                         "contract_type", "entry_date", "created_at", "updated_at")
VALUES (:employee_id, :external_id, 'Élodie', 'Vérification', 'actif', 'Quai', 'Cariste', 'CDI', :today,
        :now, :now);

-- name: add a CACES to the employee
INSERT INTO "caces" ("id", "employee_id", "kind", "completion_date", "expiration_date", "created_at")
VALUES (:caces_id, :employee_id, 'R489-1A', :today, date(:today, '+5 years'), :now);

-- name: add a contract to the employee
INSERT INTO "contracts" ("id", "employee_id", "contract_type", "start_date", "weekly_hours", "position",
                         "department", "status", "created_at", "updated_at", "created_by")
VALUES (:contract_id, :employee_id, 'CDI', :today, 35, 'Cariste', 'Logistique', 'active', :now, :now, :user);

-- name: read the new employee back with its CACES and contract
SELECT "t1".*, "t2"."kind", "t2"."expiration_date", "t3"."contract_type", "t3"."start_date"
FROM "employees" AS "t1"
INNER JOIN "caces" AS "t2" ON ("t2"."employee_id" = "t1"."id")
INNER JOIN "contracts" AS "t3" ON ("t3"."employee_id" = "t1"."id")
WHERE "t1"."id" = :employee_id;

-- name: update the employee
UPDATE "employees" SET "phone" = '04 00 00 00 00',
       "email" = 'verification@example.invalid', "workspace" = 'Zone A', "updated_at" = :now
WHERE "id" = :employee_id;

-- name: archive the employee
UPDATE "employees" SET "deleted_at" = :now, "deleted_by" = :user, "deletion_reason" = 'wems-upgrade check'
WHERE "id" = :employee_id AND "deleted_at" IS NULL;

-- name: archive the employee's CACES
UPDATE "caces" SET "deleted_at" = :now, "deleted_by" = :user, "deletion_reason" = 'wems-upgrade check'
WHERE "employee_id" = :employee_id AND "deleted_at" IS NULL;

-- name: bring the employee back
UPDATE "employees" SET "deleted_at" = NULL, "deleted_by" = NULL, "deletion_reason" = NULL, "updated_at" = :now
WHERE "id" = :employee_id AND "deleted_at" IS NOT NULL;

-- name: bring the employee's CACES back
UPDATE "caces" SET "deleted_at" = NULL, "deleted_by" = NULL, "deletion_reason" = NULL
WHERE "employee_id" = :employee_id AND "deleted_at" IS NOT NULL;

-- name: shut-down: release the app lock
DELETE FROM "app_locks" WHERE "id" = :lock_id;

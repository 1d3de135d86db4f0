-- g3 -> g4: index medical visits by result.

CREATE INDEX "medicalvisit_result" ON "medical_visits" ("result");

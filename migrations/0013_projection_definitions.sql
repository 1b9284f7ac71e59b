-- The layout definition each read model's tables were built with. A release that changes a
-- read model's tables raises its definition; the runner then rebuilds that model into its next
-- version (the old one keeps serving) before it follows the log again.
ALTER TABLE projections ADD COLUMN definition INTEGER NOT NULL DEFAULT 1;

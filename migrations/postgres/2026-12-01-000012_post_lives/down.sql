ALTER TABLE posts DROP COLUMN republished;

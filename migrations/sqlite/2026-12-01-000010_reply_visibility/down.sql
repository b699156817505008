ALTER TABLE replies DROP COLUMN visibility;

ALTER TABLE post_revisions DROP COLUMN content_warning;

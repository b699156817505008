-- A post's content warning is part of what a revision keeps and an approval covers.
ALTER TABLE post_revisions ADD COLUMN content_warning TEXT;

-- Who a reply was addressed to: `public` (to the public), `unlisted` (the public in cc)
-- or `private` (followers-only or direct). A private reply is never shown on a page, in
-- a collection or in an email; the blog can only answer it privately.
ALTER TABLE replies ADD COLUMN visibility TEXT NOT NULL DEFAULT 'public';

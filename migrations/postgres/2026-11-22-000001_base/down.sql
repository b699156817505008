DROP TABLE instance_secrets;
DROP TABLE post_tags;
DROP TABLE posts;
DROP TABLE blog_members;
DROP TABLE blogs;
DROP TABLE media;
DROP TABLE sessions;
DROP TABLE users;

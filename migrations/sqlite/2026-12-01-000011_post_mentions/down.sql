DROP TABLE post_mentions;

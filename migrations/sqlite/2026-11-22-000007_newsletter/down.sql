DROP TABLE newsletter_received;
DROP TABLE newsletter_sends;
DROP TABLE newsletter_subscriptions;
DROP TABLE newsletter_subscribers;

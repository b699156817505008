//! Transactional email through the job queue. With no SMTP server configured, messages
//! are written as `.eml` files under the data dir.

use std::time::{Duration, Instant};

use rounds::mail::Email;

use crate::e2e;

e2e! {
    async fn queued_email_is_written_to_files_without_smtp(app: TestApp) {
        let email = Email {
            to: "jane.smith@nhs.net".into(),
            subject: "You are invited to the Jane Smith blog".into(),
            text: "Follow this link to accept.".into(),
            html: Some("<p>Follow this link to accept.</p>".into()),
            reply_to: None,
            bulk: None,
        };
        let mut conn = app.conn();
        assert!(rounds::jobs::enqueue(&mut conn, &email.job("invite:1").expect("job")).expect("enqueue"));
        assert!(!rounds::jobs::enqueue(&mut conn, &email.job("invite:1").expect("job")).expect("enqueue"), "once");
        let folder = app.data_dir.join("mail");
        let deadline = Instant::now() + Duration::from_secs(15);
        let file = loop {
            let found = std::fs::read_dir(&folder).ok().and_then(|mut d| d.next()).and_then(Result::ok);
            if let Some(entry) = found {
                break entry.path();
            }
            assert!(Instant::now() < deadline, "no .eml file appeared in {}", folder.display());
            tokio::time::sleep(Duration::from_millis(100)).await;
        };
        assert_eq!(file.extension().and_then(|e| e.to_str()), Some("eml"));
        let message = std::fs::read_to_string(&file).expect("read");
        assert!(message.contains("To: jane.smith@nhs.net"), "{message}");
        assert!(message.contains("Subject: You are invited to the Jane Smith blog"), "{message}");
        assert!(message.contains("From: \"Test Trust blogs\" <no-reply@127.0.0.1>") || message.contains("From: Test Trust blogs <no-reply@127.0.0.1>"), "{message}");
        assert!(message.contains("multipart/alternative"), "{message}");
        assert_eq!(rounds::jobs::count(&mut conn, rounds::mail::EMAIL_JOB, rounds::jobs::Status::Done).expect("count"), 1);
    }
}

//! The SMTP `EmailSender` (feature `smtp`) against a minimal SMTP server on loopback: the
//! message arrives with its sender, recipient, subject and body.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpListener;
use workeros_auth::email::SmtpSender;
use workeros_core::{Email, EmailSender};

/// Serves one SMTP session and returns the commands and the message data it received.
async fn one_session(listener: TcpListener) -> (Vec<String>, String) {
    let (socket, _) = listener.accept().await.unwrap();
    let (read, mut write) = socket.into_split();
    let mut lines = BufReader::new(read).lines();
    write.write_all(b"220 test ESMTP\r\n").await.unwrap();
    let mut commands = Vec::new();
    let mut data = String::new();
    while let Some(line) = lines.next_line().await.unwrap() {
        let upper = line.to_ascii_uppercase();
        commands.push(line.clone());
        if upper.starts_with("EHLO") {
            write
                .write_all(b"250-test\r\n250 8BITMIME\r\n")
                .await
                .unwrap();
        } else if upper.starts_with("DATA") {
            write.write_all(b"354 go on\r\n").await.unwrap();
            while let Some(l) = lines.next_line().await.unwrap() {
                if l == "." {
                    break;
                }
                data.push_str(&l);
                data.push('\n');
            }
            write.write_all(b"250 queued\r\n").await.unwrap();
        } else if upper.starts_with("QUIT") {
            write.write_all(b"221 bye\r\n").await.unwrap();
            break;
        } else {
            write.write_all(b"250 ok\r\n").await.unwrap();
        }
    }
    (commands, data)
}

#[tokio::test]
async fn smtp_sender_delivers() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    let server = tokio::spawn(one_session(listener));
    let sender = SmtpSender::new(
        &format!("smtp://127.0.0.1:{port}"),
        "workeros <noreply@example.com>",
    )
    .unwrap();
    sender
        .send(&Email {
            to: "cleo@example.com".into(),
            subject: "You are invited".into(),
            text: "Set your password here: https://app.example.com/accept-invite?token=abc".into(),
            html: None,
        })
        .await
        .unwrap();
    drop(sender);
    let (commands, data) = tokio::time::timeout(std::time::Duration::from_secs(10), server)
        .await
        .expect("the session ends")
        .unwrap();
    assert!(
        commands
            .iter()
            .any(|c| c.contains("MAIL FROM:<noreply@example.com>")),
        "{commands:?}"
    );
    assert!(
        commands
            .iter()
            .any(|c| c.contains("RCPT TO:<cleo@example.com>")),
        "{commands:?}"
    );
    assert!(data.contains("Subject: You are invited"), "{data}");
    assert!(data.contains("accept-invite?token=abc"), "{data}");
    // A bad sender address is an error, not a panic.
    assert!(SmtpSender::new("smtp://127.0.0.1:1", "not an address").is_err());
}

//! How many connections a server holds (`max_connections`, `server/src/listen.rs`): past the
//! limit a new connection is told to come back later, the connections held keep being served,
//! and the server takes new ones again as soon as one closes.

use std::time::Duration;

use readroom_server::db::Backend;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;

use crate::support::TestApp;

/// One HTTP/1.1 answer: status, headers (lowercased names) and body.
struct Answer {
    status: u16,
    head: String,
    body: String,
}

/// Reads one answer from `stream` (a `content-length` body, or up to the close).
async fn read_answer(stream: &mut BufReader<TcpStream>) -> Answer {
    let mut head = String::new();
    loop {
        let mut line = String::new();
        let read = stream.read_line(&mut line).await.expect("read");
        if read == 0 || line == "\r\n" {
            break;
        }
        head.push_str(&line.to_ascii_lowercase());
    }
    let status = head
        .split_ascii_whitespace()
        .nth(1)
        .and_then(|code| code.parse().ok())
        .unwrap_or_else(|| panic!("not an HTTP answer: {head:?}"));
    let length = head
        .lines()
        .find_map(|line| line.strip_prefix("content-length: "))
        .map(|length| length.trim().parse::<usize>().unwrap());
    let mut body = Vec::new();
    match length {
        Some(length) => {
            body.resize(length, 0);
            stream.read_exact(&mut body).await.expect("body");
        }
        None => {
            stream.read_to_end(&mut body).await.expect("body");
        }
    }
    Answer {
        status,
        head,
        body: String::from_utf8_lossy(&body).into_owned(),
    }
}

/// `GET /healthz` on a kept-alive connection.
async fn health(stream: &mut BufReader<TcpStream>) -> Answer {
    stream
        .get_mut()
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: readroom\r\n\r\n")
        .await
        .expect("write");
    read_answer(stream).await
}

async fn connect(address: &str) -> BufReader<TcpStream> {
    BufReader::new(TcpStream::connect(address).await.expect("connect"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn past_the_connection_limit_new_connections_are_told_to_retry_and_the_server_recovers() {
    let app = TestApp::start_with(Backend::Sqlite, |config| config.max_connections = 3).await;
    let address = app.url.trim_start_matches("http://").to_owned();

    let mut held = Vec::new();
    for _ in 0..3 {
        let mut connection = connect(&address).await;
        assert_eq!(health(&mut connection).await.status, 200);
        held.push(connection);
    }

    // A fourth connection is answered at once and closed. Its request, sent at once as a
    // client does, is read and dropped first: closing on unread data would reset the
    // connection, and the client would see the reset instead of the 503.
    let mut refused = connect(&address).await;
    refused
        .get_mut()
        .write_all(b"GET /healthz HTTP/1.1\r\nhost: readroom\r\n\r\n")
        .await
        .expect("write");
    let answer = tokio::time::timeout(Duration::from_secs(5), read_answer(&mut refused))
        .await
        .expect("the refusal comes at once");
    assert_eq!(answer.status, 503, "{}{}", answer.head, answer.body);
    assert!(
        answer.head.contains("retry-after: 1\r\n"),
        "{}",
        answer.head
    );
    assert!(answer.body.contains("\"overloaded\""), "{}", answer.body);
    let mut rest = Vec::new();
    let closed = refused.read_to_end(&mut rest).await.expect("read");
    assert_eq!(closed, 0, "the refused connection is closed");

    // The connections held are still served.
    for connection in &mut held {
        assert_eq!(health(connection).await.status, 200);
    }

    // Once one closes, a new connection is served again (as soon as the server has seen the
    // close: a connection that comes before that is refused, and the client tries again).
    drop(held.pop());
    let mut statuses = Vec::new();
    for _ in 0..50 {
        tokio::time::sleep(Duration::from_millis(20)).await;
        let mut connection = connect(&address).await;
        // A refused connection may be reset under the request: that is a refusal too.
        let attempt = tokio::time::timeout(Duration::from_secs(5), async {
            connection
                .get_mut()
                .write_all(b"GET /healthz HTTP/1.1\r\nhost: readroom\r\n\r\n")
                .await?;
            let mut status_line = String::new();
            connection.read_line(&mut status_line).await?;
            Ok::<_, std::io::Error>(status_line)
        })
        .await
        .expect("an answer comes");
        let status = attempt.unwrap_or_default();
        statuses.push(status.trim().to_owned());
        if status.starts_with("HTTP/1.1 200") {
            return;
        }
    }
    panic!("no connection was served again after one closed: {statuses:?}");
}

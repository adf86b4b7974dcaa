//! Request limits on the customer API: each account's request rate (`--rate-limit`).

use std::time::Duration;

use reqwest::{Method, StatusCode};
use serde_json::json;

use crate::support::{Reply, TestApp, receiver_url, send};

const ENDPOINTS: &str = "/v3/webhooks/endpoints";

/// `n` list requests with `key`, each sent when the last one is answered.
async fn burst(app: &TestApp, key: &str, n: usize) -> Vec<Reply> {
    let mut replies = Vec::with_capacity(n);
    for _ in 0..n {
        replies.push(send(app.as_customer(key, Method::GET, ENDPOINTS)).await);
    }
    replies
}

fn retry_after(reply: &Reply) -> u64 {
    let value = reply.headers.get("retry-after").expect("a 429 carries Retry-After");
    value.to_str().expect("ascii").parse().expect("whole seconds")
}

#[tokio::test]
async fn requests_beyond_the_accounts_rate_get_429_with_retry_after() {
    // One request a second: the second of ten sent back to back is over it.
    let app = TestApp::spawn_with(&["--rate-limit", "1"]).await;
    let key = app.new_account("busy").await;
    let replies = burst(&app, &key, 10).await;
    assert_eq!(replies[0].status, StatusCode::OK);
    let limited: Vec<&Reply> = replies.iter().filter(|r| r.status == StatusCode::TOO_MANY_REQUESTS).collect();
    assert!(!limited.is_empty(), "ten requests back to back against one a second");
    for reply in limited {
        reply.assert_error(429, "rate_limit_exceeded", None);
        assert_eq!(retry_after(reply), 1, "the wait rounded up to whole seconds");
    }
}

#[tokio::test]
async fn one_accounts_limit_leaves_other_accounts_alone() {
    let app = TestApp::spawn_with(&["--rate-limit", "1"]).await;
    let busy = app.new_account("busy").await;
    let quiet = app.new_account("quiet").await;
    assert!(burst(&app, &busy, 5).await.iter().any(|r| r.status == StatusCode::TOO_MANY_REQUESTS));
    send(app.as_customer(&quiet, Method::GET, ENDPOINTS)).await.assert_ok();
}

#[tokio::test]
async fn a_refused_request_changes_nothing() {
    let app = TestApp::spawn_with(&["--rate-limit", "1"]).await;
    let key = app.new_account("busy").await;
    let create =
        |n: usize| app.as_customer(&key, Method::POST, ENDPOINTS).json(&json!({"url": receiver_url(n)}));
    send(create(1)).await.assert_ok();
    let refused = send(create(2)).await;
    refused.assert_error(429, "rate_limit_exceeded", None);
    tokio::time::sleep(Duration::from_secs(retry_after(&refused))).await;
    let listed = send(app.as_customer(&key, Method::GET, ENDPOINTS)).await;
    let urls: Vec<&str> =
        listed.assert_ok().as_array().expect("list").iter().filter_map(|e| e["url"].as_str()).collect();
    assert_eq!(urls, vec![receiver_url(1).as_str()], "only the endpoint created within the limit");
}

#[tokio::test]
async fn a_rate_limit_of_zero_turns_it_off() {
    let app = TestApp::spawn_with(&["--rate-limit", "0"]).await;
    let key = app.new_account("busy").await;
    assert!(burst(&app, &key, 30).await.iter().all(|r| r.status == StatusCode::OK));
}

/// Limits below hyper: slow clients and oversized request heads.
mod slow_and_oversized_clients {
    use std::time::Duration;

    use reqwest::Method;
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpStream;

    use crate::support::{TestApp, send};

    /// Far beyond the 1 s client timeout these tests set: only a server that never
    /// cuts the client off reaches it.
    const GUARD: Duration = Duration::from_secs(30);

    async fn connect(app: &TestApp) -> TcpStream {
        let address = app.base_url.trim_start_matches("http://");
        TcpStream::connect(address).await.expect("connect")
    }

    /// Writes `trickle` one byte every 100 ms after `head`, and returns what the
    /// server sent before closing the connection or finishing an answer, or `None`
    /// if it did neither.
    async fn trickle(app: &TestApp, head: &str, trickle: &str) -> Option<String> {
        let (mut read, mut write) = connect(app).await.into_split();
        write.write_all(head.as_bytes()).await.expect("write the head");
        let slow_writer = {
            let trickle = trickle.to_owned();
            tokio::spawn(async move {
                for byte in trickle.bytes().cycle() {
                    if write.write_all(&[byte]).await.is_err() {
                        return;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            })
        };
        // Until the server closes the connection, or has sent a whole error envelope.
        let read_answer = async {
            let mut answer = Vec::new();
            let mut chunk = [0u8; 4096];
            loop {
                match read.read(&mut chunk).await {
                    Ok(0) | Err(_) => return answer,
                    Ok(n) => answer.extend_from_slice(&chunk[..n]),
                }
                if answer.ends_with(b"}}") {
                    return answer;
                }
            }
        };
        let answer = tokio::time::timeout(GUARD, read_answer).await;
        slow_writer.abort();
        answer.ok().map(|answer| String::from_utf8_lossy(&answer).into_owned())
    }

    #[tokio::test]
    async fn a_client_that_trickles_its_headers_is_cut_off() {
        let app = TestApp::spawn_with(&["--client-timeout", "1s"]).await;
        let answer = trickle(&app, "GET /healthz HTTP/1.1\r\nHost: hookd\r\n", "X-Slow: a\r\n").await;
        assert!(answer.is_some(), "the connection was still open after {GUARD:?}");
        send(app.anonymous(Method::GET, "/healthz")).await.assert_ok();
    }

    #[tokio::test]
    async fn a_client_that_trickles_its_body_gets_400_and_creates_nothing() {
        let app = TestApp::spawn_with(&["--client-timeout", "1s"]).await;
        let head = format!(
            "POST /v3/webhooks/endpoints HTTP/1.1\r\nHost: hookd\r\nX-Api-Key: {}\r\n\
             Content-Type: application/json\r\nContent-Length: 400\r\n\r\n",
            app.api_key
        );
        let answer = trickle(&app, &head, r#"{"url": "http://127.0.0.1:9/hook"}   "#).await;
        let answer = answer.expect("the server answered before the body was complete");
        assert!(answer.starts_with("HTTP/1.1 400"), "{answer}");
        assert!(answer.contains("invalid_request"), "{answer}");
        let listed = send(app.customer(Method::GET, "/v3/webhooks/endpoints")).await;
        assert_eq!(listed.assert_ok().as_array().map(Vec::len), Some(0));
    }

    #[tokio::test]
    async fn an_oversized_url_gets_414_and_oversized_headers_431_in_the_envelope() {
        let app = TestApp::spawn().await;
        let long = "a".repeat(9 * 1024);
        let url = send(app.customer(Method::GET, &format!("/v3/webhooks/endpoints?token={long}"))).await;
        url.assert_error(414, "invalid_request", None);
        let headers = (0..3).fold(app.customer(Method::GET, "/v3/webhooks/endpoints"), |request, n| {
            request.header(format!("X-Padding-{n}"), "b".repeat(6 * 1024))
        });
        send(headers).await.assert_error(431, "invalid_request", None);
        send(app.customer(Method::GET, "/v3/webhooks/endpoints")).await.assert_ok();
    }
}

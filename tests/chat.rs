//! The OpenAI-compatible chat policy against a local mock server on loopback.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::sync::mpsc;

use eef_runtime::policy::{ActRequest, ChatConfig, ChatPolicy, Policy};

/// Serves the given (status, body) answers, one per connection, then stops; sends every request
/// body it received.
fn mock(answers: Vec<(u16, &'static str)>) -> (String, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}/v1", listener.local_addr().unwrap());
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for (status, body) in answers {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut len = 0usize;
            loop {
                let mut line = String::new();
                reader.read_line(&mut line).unwrap();
                if line == "\r\n" || line.is_empty() {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    len = v.trim().parse().unwrap();
                }
            }
            let mut buf = vec![0; len];
            reader.read_exact(&mut buf).unwrap();
            tx.send(String::from_utf8(buf).unwrap()).unwrap();
            let mut stream = stream;
            write!(stream, "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}", body.len()).unwrap();
        }
    });
    (url, rx)
}

fn request() -> ActRequest {
    ActRequest {
        seed: 0,
        task: "webshop-1".into(),
        instruction: "buy red socks".into(),
        history: vec![eef_runtime::policy::Step::new("WebShop [SEP] Search", "search[red socks]")],
        observation: "Page 1 (Total results: 50)".into(),
        valid_actions: None,
        temperature: 0.0,
    }
}

#[test]
fn retries_server_errors_and_parses_react_answers() {
    let ok = r#"{"choices":[{"message":{"role":"assistant","content":"Thought: the first sock fits.\nAction: click[b0001]"}}]}"#;
    let (url, bodies) = mock(vec![(503, "{}"), (200, ok)]);
    let policy = ChatPolicy::new(ChatConfig { base_url: url, model: "test-model".into(), backoff_ms: 10, ..ChatConfig::default() }, "You shop.");
    let act = policy.act_batch(&[request()]).remove(0).unwrap();
    assert_eq!(act.action, "click[b0001]");
    assert_eq!(act.thought.as_deref(), Some("the first sock fits."));
    let _first = bodies.recv().unwrap();
    let body: serde_json::Value = serde_json::from_str(&bodies.recv().unwrap()).unwrap();
    assert_eq!(body["model"], "test-model");
    let msgs = body["messages"].as_array().unwrap();
    assert_eq!(msgs[0]["content"], "You shop.");
    assert_eq!(msgs[1]["content"], "Instruction: buy red socks\nObservation: WebShop [SEP] Search");
    assert_eq!(msgs[2]["content"], "Action: search[red socks]");
    assert_eq!(msgs[3]["content"], "Observation: Page 1 (Total results: 50)");
}

#[test]
fn client_errors_are_not_retried() {
    let (url, _bodies) = mock(vec![(401, r#"{"error":"bad key"}"#)]);
    let policy = ChatPolicy::new(ChatConfig { base_url: url, backoff_ms: 10, ..ChatConfig::default() }, "");
    let err = policy.act_batch(&[request()]).remove(0).unwrap_err().to_string();
    assert!(err.contains("HTTP 401") && err.contains("bad key"), "{err}");
}

#[test]
fn an_unreachable_server_is_a_clear_error() {
    let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let url = format!("http://127.0.0.1:{port}/v1");
    let policy = ChatPolicy::new(ChatConfig { base_url: url.clone(), max_retries: 2, backoff_ms: 5, ..ChatConfig::default() }, "");
    let err = policy.act_batch(&[request()]).remove(0).unwrap_err().to_string();
    assert!(err.contains("cannot reach the chat endpoint") && err.contains(&url) && err.contains("after 3 attempts"), "{err}");
}

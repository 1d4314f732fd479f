//! The API docs cannot drift: every `curl` example of `docs/device-login.md` runs against a real
//! daemon and answers what the doc shows next (its status, its `error` code, or the fields of its
//! JSON), and every `error` code of the polling table is answered in the situation the table
//! describes.

use serde_json::Value;

use crate::support::Setup;
use crate::support::browser::Browser;

const DOC: &str = include_str!("../../docs/device-login.md");
/// The server the examples name.
const EXAMPLE_SERVER: &str = "https://coder.example.com";

/// One `curl` example and what the doc shows after it (before the next example).
#[derive(Debug)]
struct Example {
    method: String,
    url: String,
    headers: Vec<(String, String)>,
    body: Option<String>,
    /// `HTTP/1.1 <status>` shown after it, if any.
    status: Option<u16>,
    /// The JSON shown after it (the answer's body, or its shape).
    json: Option<Value>,
}

/// The words of a shell command line, with single quotes undone (enough for the doc's examples).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut quoted = false;
    let mut started = false;
    for c in line.chars() {
        match c {
            '\'' => {
                quoted = !quoted;
                started = true;
            }
            c if c.is_whitespace() && !quoted => {
                if started {
                    words.push(std::mem::take(&mut word));
                    started = false;
                }
            }
            c => {
                word.push(c);
                started = true;
            }
        }
    }
    if started {
        words.push(word);
    }
    words
}

/// The examples: indented `curl` commands (with `\` continuations) and what follows each.
fn examples() -> Vec<Example> {
    let lines: Vec<&str> = DOC.lines().collect();
    let mut examples: Vec<Example> = Vec::new();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        if line.starts_with("    curl ") {
            let mut command = String::new();
            while i < lines.len() {
                let part = lines[i].trim();
                command.push_str(part.trim_end_matches('\\'));
                command.push(' ');
                i += 1;
                if !part.ends_with('\\') {
                    break;
                }
            }
            let words = shell_words(&command);
            let mut example = Example {
                method: "GET".into(),
                url: String::new(),
                headers: Vec::new(),
                body: None,
                status: None,
                json: None,
            };
            let mut w = words.iter().skip(1);
            while let Some(word) = w.next() {
                match word.as_str() {
                    "-X" => example.method = w.next().unwrap().clone(),
                    "-H" => {
                        let (k, v) = w.next().unwrap().split_once(':').unwrap();
                        example.headers.push((k.trim().into(), v.trim().into()));
                    }
                    "-d" => example.body = Some(w.next().unwrap().clone()),
                    "-sS" => {}
                    url => example.url = url.to_owned(),
                }
            }
            examples.push(example);
            continue;
        }
        if let Some(example) = examples.last_mut() {
            if example.status.is_none() && example.json.is_none() {
                if let Some(status) = line.trim_start().strip_prefix("HTTP/1.1 ") {
                    example.status = status.split(' ').next().and_then(|s| s.parse().ok());
                    // The JSON is the following indented lines.
                    let mut json = String::new();
                    let mut j = i + 1;
                    while j < lines.len() && lines[j].starts_with("    ") {
                        json.push_str(lines[j]);
                        j += 1;
                    }
                    example.json = serde_json::from_str(&json).ok();
                } else if line.trim() == "```json" {
                    let mut json = String::new();
                    let mut j = i + 1;
                    while lines[j].trim() != "```" {
                        json.push_str(lines[j]);
                        j += 1;
                    }
                    example.json =
                        Some(serde_json::from_str(&json).expect("the doc's JSON parses"));
                    example.status = Some(200);
                }
            }
        }
        i += 1;
    }
    examples
}

#[tokio::test]
async fn every_curl_example_answers_what_the_doc_shows() {
    let daemon = Setup::git().start();
    let examples = examples();
    assert!(
        examples.len() >= 2,
        "the doc has its examples: {examples:?}"
    );
    let mut device_code = String::new();
    for example in &examples {
        let url = example.url.replace(EXAMPLE_SERVER, &daemon.base);
        assert!(
            url.starts_with(&daemon.base),
            "an example on the documented server: {url}"
        );
        let mut request = daemon.http.request(example.method.parse().unwrap(), &url);
        for (name, value) in &example.headers {
            request = request.header(name, value);
        }
        if let Some(body) = &example.body {
            // The doc's elided device code stands for the one the first example got.
            request = request.body(body.replace("q5S0b2V3...", &device_code));
        }
        let response = request.send().await.unwrap();
        let status = response.status().as_u16();
        let answer: Value = response.json().await.unwrap();
        if let Some(code) = answer["device_code"].as_str() {
            device_code = code.to_owned();
        }
        if let Some(expected) = example.status {
            assert_eq!(
                status, expected,
                "{} {}: {answer}",
                example.method, example.url
            );
        }
        match &example.json {
            Some(Value::Object(shown)) if status == 200 => {
                let mut keys: Vec<&String> = shown.keys().collect();
                let mut got: Vec<&String> = answer.as_object().unwrap().keys().collect();
                keys.sort();
                got.sort();
                assert_eq!(got, keys, "the fields the doc shows: {answer}");
            }
            Some(shown) => assert_eq!(answer["error"], shown["error"], "{answer}"),
            None => {}
        }
    }
}

/// The `error` codes the polling table documents.
fn documented_poll_errors() -> Vec<String> {
    let table = &DOC[DOC.find("| `error` | meaning").expect("the polling table")..];
    table
        .lines()
        .skip(2)
        .take_while(|l| l.starts_with('|'))
        .map(|l| l.split('`').nth(1).unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn every_documented_poll_error_is_answered_as_the_table_says() {
    let daemon =
        Setup::git().start_with(&["--device-poll-interval", "1", "--device-code-ttl", "2"]);
    let mut seen = Vec::new();
    let code = daemon.device_code("docs").await;
    let device = code["device_code"].as_str().unwrap();
    // Not approved yet.
    let (status, answer) = daemon.poll_device(device).await;
    assert_eq!(status, 400);
    seen.push(answer["error"].as_str().unwrap().to_owned());
    // Sooner than the interval.
    let (_, answer) = daemon.poll_device(device).await;
    assert_eq!(answer["interval"], 6, "the new total interval: {answer}");
    seen.push(answer["error"].as_str().unwrap().to_owned());
    // Denied in the browser.
    let denied = daemon.device_code("docs").await;
    let password = daemon.admin_password();
    let browser = Browser::new(&daemon.base);
    browser.sign_in("admin", &password).await;
    browser
        .decide_device(denied["user_code"].as_str().unwrap(), "deny")
        .await;
    let (_, answer) = daemon
        .poll_device(denied["device_code"].as_str().unwrap())
        .await;
    seen.push(answer["error"].as_str().unwrap().to_owned());
    // Outlived expires_in.
    tokio::time::sleep(std::time::Duration::from_millis(2100)).await;
    let (_, answer) = daemon.poll_device(device).await;
    seen.push(answer["error"].as_str().unwrap().to_owned());
    // Unknown.
    let (_, answer) = daemon.poll_device("no-such-code").await;
    seen.push(answer["error"].as_str().unwrap().to_owned());
    let mut documented = documented_poll_errors();
    documented.sort();
    seen.sort();
    assert_eq!(seen, documented);
}

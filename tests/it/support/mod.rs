//! Test support: a real `coder-server` process on 127.0.0.1:0 with its own temporary setup
//! repository and data directory.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use coderflow::reload::ReloadStatus;
use coderflow::server::admin::{AdminRequest, AdminResponse, admin_request};
use serde_json::Value;
use tempfile::TempDir;

pub mod browser;
pub mod hostile;
pub mod idp;
pub mod postgres;

/// The daemon binary under test.
pub const BIN: &str = env!("CARGO_BIN_EXE_coder-server");
/// How long any wait in a test may take before it fails.
pub const DEADLINE: Duration = Duration::from_secs(20);

/// A valid `oidc.json` whose button reads `display_name`.
pub fn oidc_json(display_name: &str) -> String {
    serde_json::json!({
        "$schema": "https://coderflow.dev/schemas/oidc.schema.json",
        "enabled": true,
        "display_name": display_name,
        "client_id": "coderflow-test",
        "client_secret": "test-secret-do-not-log",
        "issuer": "http://127.0.0.1:9/",
    })
    .to_string()
}

/// Writes `content` the way most editors save: a new file renamed over the old one.
pub fn save_atomic(path: &Path, content: &str) {
    let tmp = path.with_file_name(format!(
        ".{}.save",
        path.file_name().unwrap().to_string_lossy()
    ));
    std::fs::write(&tmp, content).unwrap();
    std::fs::rename(&tmp, path).unwrap();
}

/// Runs `coder-server` with `args` to completion.
pub fn run_cli(args: &[&str]) -> (ExitStatus, String, String) {
    let out = Command::new(BIN)
        .args(args)
        .env("RUST_LOG", "info")
        .stdin(Stdio::null())
        .output()
        .unwrap();
    (
        out.status,
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Runs `coder-server <command> --data-dir <data> <args>`, writing `stdin` to its input;
/// answers (exit code, stdout, stderr).
pub fn admin_command(
    command: &str,
    data: &Path,
    args: &[&str],
    stdin: Option<&str>,
) -> (i32, String, String) {
    let data = data.to_string_lossy();
    let mut all = vec![command, "--data-dir", &data];
    all.extend_from_slice(args);
    server_command(&all, stdin)
}

/// Runs `coder-server <args>` (without the `CODERFLOW_*` variables of the caller's shell),
/// writing `stdin` to its input; answers (exit code, stdout, stderr).
pub fn server_command(args: &[&str], stdin: Option<&str>) -> (i32, String, String) {
    use std::io::Write;
    let mut child = Command::new(BIN)
        .args(args)
        .env_remove("CODERFLOW_DATABASE_URL")
        .env_remove("CODERFLOW_DATA_DIR")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    if let Some(input) = stdin {
        child
            .stdin
            .take()
            .unwrap()
            .write_all(input.as_bytes())
            .unwrap();
    }
    drop(child.stdin.take());
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

/// Polls `check` until it returns `Some`, failing the test after [`DEADLINE`].
pub async fn eventually<T, F, Fut>(what: &str, mut check: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Option<T>>,
{
    let start = Instant::now();
    loop {
        if let Some(value) = check().await {
            return value;
        }
        assert!(start.elapsed() < DEADLINE, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// A temporary setup repository and data directory, before the daemon starts.
pub struct Setup {
    pub tmp: TempDir,
    pub repo: PathBuf,
    pub data: PathBuf,
}

impl Setup {
    /// A setup repository folder that is a fresh git work tree ignoring `oidc.json`.
    pub fn git() -> Setup {
        let setup = Setup::plain();
        git2::Repository::init(&setup.repo).unwrap();
        std::fs::write(setup.repo.join(".gitignore"), "oidc.json\n").unwrap();
        setup
    }

    /// A setup repository folder that is not a git work tree.
    pub fn plain() -> Setup {
        let setup = Setup::missing();
        std::fs::create_dir(&setup.repo).unwrap();
        setup
    }

    /// Paths only: the setup repository does not exist yet.
    pub fn missing() -> Setup {
        let tmp = tempfile::tempdir().unwrap();
        let repo = tmp.path().join("setup");
        let data = tmp.path().join("data");
        Setup { tmp, repo, data }
    }

    /// Makes `oidc.json` a link to a file outside the setup repository, so that editing it
    /// produces no event the daemon's watch sees: only an explicit reload picks it up. Returns
    /// the outside file.
    pub fn link_oidc_outside(&self, content: &str) -> PathBuf {
        let outside = self.tmp.path().join("outside");
        std::fs::create_dir_all(&outside).unwrap();
        let file = outside.join("oidc.json");
        std::fs::write(&file, content).unwrap();
        std::os::unix::fs::symlink(&file, self.oidc_path()).unwrap();
        file
    }

    pub fn oidc_path(&self) -> PathBuf {
        self.repo.join("oidc.json")
    }

    pub fn write_oidc(&self, content: &str) {
        std::fs::write(self.oidc_path(), content).unwrap();
    }

    /// `coder-server serve` for this setup, on 127.0.0.1:0, not yet spawned.
    pub fn serve_command(&self, extra: &[&str]) -> Command {
        let mut command = Command::new(BIN);
        command
            .arg("serve")
            .arg("--setup-repo")
            .arg(&self.repo)
            .arg("--data-dir")
            .arg(&self.data)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(extra)
            .env("RUST_LOG", "info,coderflow=debug")
            .env_remove("CODERFLOW_PUBLIC_URL")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    }

    /// Starts the daemon and waits until it listens.
    pub fn start(self) -> Daemon {
        self.start_with(&[])
    }

    pub fn start_with(self, extra: &[&str]) -> Daemon {
        let command = self.serve_command(extra);
        Daemon::spawn(command, self)
    }
}

/// A running `coder-server serve`. Dropping it kills the process.
pub struct Daemon {
    child: Child,
    pub base: String,
    pub setup: Setup,
    log: Arc<Mutex<String>>,
    pub http: reqwest::Client,
}

impl Daemon {
    /// Spawns `command` (whose stderr must be piped) and waits for its `listening on` line.
    pub fn spawn(mut command: Command, setup: Setup) -> Daemon {
        let mut child = command.spawn().unwrap();
        let log = capture_lines(child.stderr.take().unwrap());
        let start = Instant::now();
        let base = loop {
            let text = log.lock().unwrap().clone();
            if let Some(at) = text.find("listening on http://") {
                let rest = &text[at + "listening on ".len()..];
                let end = rest
                    .find(|c: char| c.is_whitespace() || c == '"')
                    .unwrap_or(rest.len());
                break rest[..end].to_owned();
            }
            if let Some(status) = child.try_wait().unwrap() {
                panic!("coder-server exited with {status} before listening:\n{text}");
            }
            assert!(
                start.elapsed() < DEADLINE,
                "coder-server did not start:\n{text}"
            );
            std::thread::sleep(Duration::from_millis(10));
        };
        Daemon {
            child,
            base,
            setup,
            log,
            http: reqwest::Client::new(),
        }
    }

    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Everything the daemon wrote to stderr so far.
    pub fn logs(&self) -> String {
        self.log.lock().unwrap().clone()
    }

    /// The first admin's password, from the daemon's one-time stderr line.
    pub fn admin_password(&self) -> String {
        let logs = self.logs();
        let line = logs
            .lines()
            .find(|l| l.starts_with("initial admin password (user \"admin\"): "))
            .expect("the first start printed the admin password");
        line.rsplit(' ').next().unwrap().to_owned()
    }

    /// `POST /api/auth/login`; the raw response.
    pub async fn login_response(&self, username: &str, password: &str) -> reqwest::Response {
        self.http
            .post(self.url("/api/auth/login"))
            .json(&serde_json::json!({"username": username, "password": password}))
            .send()
            .await
            .unwrap()
    }

    /// Signs in with a password and returns the API key.
    pub async fn login(&self, username: &str, password: &str) -> String {
        let response = self.login_response(username, password).await;
        assert_eq!(response.status(), 200, "login as {username}");
        let body: Value = response.json().await.unwrap();
        body["api_key"].as_str().unwrap().to_owned()
    }

    /// `POST /api/auth/device/code` for `client_name`; asserts 200 and returns the answer.
    pub async fn device_code(&self, client_name: &str) -> Value {
        let response = self
            .http
            .post(self.url("/api/auth/device/code"))
            .json(&serde_json::json!({"client_name": client_name}))
            .send()
            .await
            .unwrap();
        assert_eq!(response.status(), 200);
        response.json().await.unwrap()
    }

    /// One `POST /api/auth/device/token` poll: the status and the JSON answer.
    pub async fn poll_device(&self, device_code: &str) -> (u16, Value) {
        let response = self
            .http
            .post(self.url("/api/auth/device/token"))
            .json(&serde_json::json!({"device_code": device_code}))
            .send()
            .await
            .unwrap();
        (response.status().as_u16(), response.json().await.unwrap())
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// An API key of the first admin.
    pub async fn admin_key(&self) -> String {
        self.login("admin", &self.admin_password()).await
    }

    /// `method path` with `Authorization: Bearer key` and an optional JSON body.
    pub async fn api(
        &self,
        method: reqwest::Method,
        path: &str,
        key: &str,
        body: Option<Value>,
    ) -> reqwest::Response {
        let mut request = self.http.request(method, self.url(path)).bearer_auth(key);
        if let Some(body) = body {
            request = request.json(&body);
        }
        request.send().await.unwrap()
    }

    /// Creates a user through `POST /api/users` as `admin_key`; asserts 201.
    pub async fn create_user(
        &self,
        admin_key: &str,
        username: &str,
        role: &str,
        password: Option<&str>,
    ) -> Value {
        let mut body = serde_json::json!({
            "username": username,
            "email": format!("{username}@example.com"),
            "name": username,
            "role": role,
        });
        if let Some(password) = password {
            body["password"] = password.into();
        }
        let response = self
            .api(reqwest::Method::POST, "/api/users", admin_key, Some(body))
            .await;
        assert_eq!(response.status(), 201, "create {username}");
        response.json().await.unwrap()
    }

    pub async fn get(&self, path: &str) -> reqwest::Response {
        self.http.get(self.url(path)).send().await.unwrap()
    }

    pub async fn get_json(&self, path: &str) -> Value {
        let response = self.get(path).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    /// `GET path` as the holder of API key `key`; asserts 200 and answers the JSON.
    pub async fn get_json_as(&self, path: &str, key: &str) -> Value {
        let response = self.api(reqwest::Method::GET, path, key, None).await;
        assert_eq!(response.status(), 200, "GET {path}");
        response.json().await.unwrap()
    }

    /// `GET /api/auth/oidc/config`.
    pub async fn public_config(&self) -> Value {
        self.get_json("/api/auth/oidc/config").await
    }

    /// Waits until the public configuration's `display_name` is `name`.
    pub async fn wait_for_display_name(&self, name: &str) {
        eventually(&format!("display_name {name:?}"), || async {
            (self.public_config().await["display_name"] == name).then_some(())
        })
        .await
    }

    /// The reload status, read over the admin socket.
    pub async fn status(&self) -> ReloadStatus {
        match admin_request(&self.setup.data, &AdminRequest::Status)
            .await
            .unwrap()
        {
            AdminResponse::Status(status) => status,
            other => panic!("unexpected answer {other:?}"),
        }
    }

    /// Waits until the reload status satisfies `check`.
    pub async fn wait_for_status(
        &self,
        what: &str,
        check: impl Fn(&ReloadStatus) -> bool,
    ) -> ReloadStatus {
        eventually(what, || async {
            let status = self.status().await;
            check(&status).then_some(status)
        })
        .await
    }

    /// The value of one sample of `/metrics` (`name` with its labels, as written).
    pub async fn metric(&self, name: &str) -> f64 {
        let text = self.get("/metrics").await.text().await.unwrap();
        text.lines()
            .find_map(|line| {
                let (key, value) = line.rsplit_once(' ')?;
                (key == name).then(|| value.parse().unwrap())
            })
            .unwrap_or_else(|| panic!("no metric {name} in\n{text}"))
    }

    /// Sends a signal (`HUP`, `TERM`, `INT`, `KILL`) to the daemon.
    pub fn signal(&self, name: &str) {
        let status = Command::new("kill")
            .arg(format!("-{name}"))
            .arg(self.pid().to_string())
            .status()
            .unwrap();
        assert!(status.success());
    }

    /// Waits for the process to exit and returns its status.
    pub fn wait_exit(&mut self) -> ExitStatus {
        let start = Instant::now();
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "coder-server did not exit:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

impl Drop for Daemon {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Collects the lines of `stream` into a shared string, on a thread of its own.
pub fn capture_lines(stream: impl std::io::Read + Send + 'static) -> Arc<Mutex<String>> {
    let log = Arc::new(Mutex::new(String::new()));
    let sink = log.clone();
    std::thread::spawn(move || {
        for line in BufReader::new(stream).lines() {
            let Ok(line) = line else { break };
            let mut log = sink.lock().unwrap();
            log.push_str(&line);
            log.push('\n');
        }
    });
    log
}

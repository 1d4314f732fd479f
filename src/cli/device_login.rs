//! `coder login --sso`: the device-style login. Prints the code and the URL first, opens the
//! browser when it can, then polls honouring `interval` and `slow_down` with a progress line and
//! the time left.

use std::io::{IsTerminal, Write};
use std::time::{Duration, Instant};

use anyhow::bail;

use super::client::{ApiFailure, IssuedKey, ServerClient};
use super::text;
use super::trust::{check_verification_url, origin_of};
use crate::vocab::ErrorCode;

/// Longest wait for an approval, whatever `expires_in` the server sends.
const MAX_WAIT_SECS: u64 = 3600;
/// Longest poll interval, whatever the server asks.
const MAX_INTERVAL_SECS: u64 = 60;

/// Runs the device login against `client`'s server.
///
/// Fails when the server is unreachable, SSO is disabled, or the login is denied or expires.
pub(crate) async fn run(
    client: &ServerClient,
    client_name: &str,
    no_browser: bool,
) -> anyhow::Result<IssuedKey> {
    let server = client.base().to_owned();
    let config = client.public_config().await?;
    if !config.sso_enabled {
        bail!(
            "single sign-on is not enabled on {server}; sign in with `coder login` (password) or ask an administrator to enable SSO"
        );
    }
    let code = client.device_code(client_name).await?;
    // Nothing the server sent is opened or shown before it is checked (see `super::trust`).
    let complete = check_verification_url(&server, &code.verification_uri_complete)?;
    let page = check_verification_url(&server, &code.verification_uri)?;
    let user_code = text::short(&code.user_code);
    let interactive = std::io::stderr().is_terminal();
    eprintln!(
        "To sign in to {}, open this page in a browser:\n",
        origin_of(&server)
    );
    eprintln!("    {complete}\n");
    eprintln!("and check that it shows the code {user_code}");
    eprintln!("(or open {page} and enter the code).");
    eprintln!(
        "The page offers your organisation's sign-in (\u{201c}{}\u{201d}).",
        text::short(&config.display_name)
    );
    let may_open = !no_browser && std::io::stdout().is_terminal() && has_display();
    if may_open && open_browser(&complete) {
        eprintln!("Opened your browser.");
    }
    // Bounded: a huge `expires_in` or `interval` from a hostile server must not overflow.
    let deadline = Instant::now() + Duration::from_secs(code.expires_in.min(MAX_WAIT_SECS));
    let mut interval = Duration::from_secs(code.interval.clamp(1, MAX_INTERVAL_SECS));
    let mut progress = Progress::new(interactive);
    let mut failures = 0;
    loop {
        progress.wait(interval, deadline).await;
        match client.device_token(&code.device_code).await {
            Ok(issued) => {
                progress.done();
                return Ok(issued);
            }
            Err(ApiFailure::Server { code, body, .. }) => match code.parse().ok() {
                Some(ErrorCode::AuthorizationPending) => {}
                Some(ErrorCode::SlowDown) => {
                    let next = body["interval"]
                        .as_u64()
                        .map(|s| Duration::from_secs(s.clamp(1, MAX_INTERVAL_SECS)));
                    interval = next.unwrap_or(interval + Duration::from_secs(5));
                }
                Some(ErrorCode::AccessDenied) => {
                    progress.done();
                    bail!("the sign-in was denied in the browser");
                }
                Some(ErrorCode::ExpiredToken) => {
                    progress.done();
                    bail!("the code expired before it was approved; run `coder login --sso` again");
                }
                _ => {
                    progress.done();
                    bail!("the server refused the sign-in ({code}); run `coder login --sso` again");
                }
            },
            Err(e @ ApiFailure::Untrusted { .. }) => {
                progress.done();
                return Err(e.into());
            }
            Err(e @ ApiFailure::Unreachable { .. }) => {
                failures += 1;
                if failures >= 3 {
                    progress.done();
                    return Err(e.into());
                }
            }
        }
        if Instant::now() >= deadline {
            progress.done();
            bail!("the code expired before it was approved; run `coder login --sso` again");
        }
    }
}

/// Whether a browser can be shown: a graphical session on Linux, always on macOS.
fn has_display() -> bool {
    cfg!(target_os = "macos")
        || std::env::var_os("DISPLAY").is_some_and(|d| !d.is_empty())
        || std::env::var_os("WAYLAND_DISPLAY").is_some_and(|d| !d.is_empty())
}

/// Opens `url` (checked: `https://` or loopback `http://`, so it never reads as an option).
fn open_browser(url: &url::Url) -> bool {
    let opener = if cfg!(target_os = "macos") {
        "open"
    } else {
        "xdg-open"
    };
    std::process::Command::new(opener)
        .arg(url.as_str())
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .is_ok()
}

/// The waiting line: a spinner and the time left on a terminal, one line otherwise.
struct Progress {
    interactive: bool,
    frame: usize,
    announced: bool,
}

impl Progress {
    fn new(interactive: bool) -> Progress {
        Progress {
            interactive,
            frame: 0,
            announced: false,
        }
    }

    async fn wait(&mut self, interval: Duration, deadline: Instant) {
        if !self.interactive {
            if !self.announced {
                eprintln!("Waiting for approval in the browser...");
                self.announced = true;
            }
            tokio::time::sleep(interval).await;
            return;
        }
        let until = Instant::now() + interval;
        while Instant::now() < until {
            const FRAMES: [&str; 4] = ["|", "/", "-", "\\"];
            let left = deadline.saturating_duration_since(Instant::now()).as_secs();
            eprint!(
                "\r{} Waiting for approval in the browser... {}:{:02} left ",
                FRAMES[self.frame % FRAMES.len()],
                left / 60,
                left % 60
            );
            let _ = std::io::stderr().flush();
            self.frame += 1;
            tokio::time::sleep(
                until
                    .saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(250)),
            )
            .await;
        }
    }

    fn done(&mut self) {
        if self.interactive {
            eprint!("\r{}\r", " ".repeat(60));
            let _ = std::io::stderr().flush();
        }
    }
}

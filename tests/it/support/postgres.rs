//! A real PostgreSQL for the tests: Debian's server programs, a cluster made with `initdb` in a
//! temporary folder, owned by the unprivileged `postgres` user when the tests run as root,
//! listening on 127.0.0.1 (a free port) and on a Unix socket in that folder.
//!
//! The server runs under a small shell that ends it (fast shutdown) when the test process's end
//! of its stdin closes, so a cluster never outlives the tests, whatever way they end.

use std::io::Write;
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

/// A running cluster.
pub struct Postgres {
    _dir: tempfile::TempDir,
    /// The folder of the cluster's Unix socket (and its data).
    pub socket_dir: PathBuf,
    data: PathBuf,
    bin: PathBuf,
    pub port: u16,
    owner: Option<(u32, u32)>,
    /// fsync on (benchmarks); off for the tests, whose data is thrown away.
    durable: bool,
    server: std::sync::Mutex<Option<Child>>,
}

/// The cluster shared by the tests of this process (each test uses databases of its own).
pub fn shared() -> &'static Postgres {
    static SHARED: OnceLock<Postgres> = OnceLock::new();
    SHARED.get_or_init(Postgres::start)
}

impl Postgres {
    /// Makes and starts a cluster.
    ///
    /// Panics, saying what to install, when PostgreSQL's server programs are missing.
    pub fn start() -> Postgres {
        Postgres::start_with(false)
    }

    /// Makes and starts a cluster that syncs its writes to disk, as a production one does (for
    /// benchmarks: `benches/server_load.rs` includes this file).
    #[allow(dead_code)]
    pub fn start_durable() -> Postgres {
        Postgres::start_with(true)
    }

    fn start_with(durable: bool) -> Postgres {
        let bin = server_bin();
        let dir = tempfile::Builder::new()
            .prefix("cf-pg-")
            .tempdir()
            .expect("a temporary folder");
        let owner = if unsafe { libc::geteuid() } == 0 {
            Some(postgres_user())
        } else {
            None
        };
        let socket_dir = dir.path().to_owned();
        let data = socket_dir.join("data");
        if let Some((uid, gid)) = owner {
            std::os::unix::fs::chown(&socket_dir, Some(uid), Some(gid)).expect("chown");
        }
        let status = as_owner(Command::new(bin.join("initdb")), owner)
            .args(["-D"])
            .arg(&data)
            .args([
                "-U",
                "coderflow",
                "--auth=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .output()
            .expect("initdb runs");
        assert!(
            status.status.success(),
            "initdb failed: {}",
            String::from_utf8_lossy(&status.stderr)
        );
        let port = free_port();
        let postgres = Postgres {
            _dir: dir,
            socket_dir,
            data,
            bin,
            port,
            owner,
            durable,
            server: std::sync::Mutex::new(None),
        };
        postgres.start_server();
        postgres
    }

    /// Starts the server (again) on the same port and data, and waits until it answers.
    pub fn start_server(&self) {
        let script = format!(
            "\"{bin}/postgres\" -D \"{data}\" -k \"{socket}\" -h 127.0.0.1 -p {port} \
             {sync} -c max_connections=300 \
             -c shared_buffers=16MB -c log_min_messages=fatal >\"{socket}/server.log\" 2>&1 & \
             pid=$!; read cmd; kill -INT $pid; wait $pid; [ \"$cmd\" = keep ] || rm -rf \"{socket}\"",
            bin = self.bin.display(),
            data = self.data.display(),
            socket = self.socket_dir.display(),
            port = self.port,
            sync = if self.durable {
                ""
            } else {
                "-c fsync=off -c full_page_writes=off"
            },
        );
        let child = as_owner(Command::new("sh"), self.owner)
            .args(["-c", &script])
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn()
            .expect("postgres starts");
        *self.server.lock().unwrap() = Some(child);
        let deadline = Instant::now() + Duration::from_secs(30);
        let socket = self.socket_dir.join(format!(".s.PGSQL.{}", self.port));
        while !(socket.exists()
            && std::net::TcpStream::connect(("127.0.0.1", self.port)).is_ok()
            && self.psql("postgres", "SELECT 1").is_ok())
        {
            assert!(
                Instant::now() < deadline,
                "PostgreSQL did not start: {}",
                std::fs::read_to_string(self.socket_dir.join("server.log")).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Stops the server (fast shutdown) and waits until it is gone; the data stays for
    /// [`Postgres::start_server`].
    pub fn stop_server(&self) {
        if let Some(mut child) = self.server.lock().unwrap().take() {
            if let Some(mut stdin) = child.stdin.take() {
                let _ = stdin.write_all(b"keep\n");
            }
            let _ = child.wait();
        }
    }

    /// A new empty database; its URL (TCP, no TLS).
    pub fn fresh_database(&self) -> String {
        static NEXT: AtomicU32 = AtomicU32::new(0);
        let name = format!(
            "t{}_{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::Relaxed)
        );
        self.psql("postgres", &format!("CREATE DATABASE {name}"))
            .expect("CREATE DATABASE");
        self.url(&name)
    }

    /// The URL of database `name` over TCP.
    pub fn url(&self, name: &str) -> String {
        format!(
            "postgres://coderflow@127.0.0.1:{}/{name}?sslmode=disable",
            self.port
        )
    }

    /// The URL of database `name` over the Unix socket.
    pub fn socket_url(&self, name: &str) -> String {
        format!(
            "postgres://coderflow@/{name}?host={}&port={}&sslmode=disable",
            self.socket_dir.display(),
            self.port
        )
    }

    /// Runs `sql` with psql in database `db`; its output.
    pub fn psql(&self, db: &str, sql: &str) -> Result<String, String> {
        let output = Command::new(self.bin.join("psql"))
            .args(["-X", "-q", "-A", "-t", "-v", "ON_ERROR_STOP=1", "-h"])
            .arg(&self.socket_dir)
            .args([
                "-p",
                &self.port.to_string(),
                "-U",
                "coderflow",
                "-d",
                db,
                "-c",
                sql,
            ])
            .output()
            .map_err(|e| e.to_string())?;
        if output.status.success() {
            Ok(String::from_utf8_lossy(&output.stdout).trim().to_owned())
        } else {
            Err(String::from_utf8_lossy(&output.stderr).into_owned())
        }
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // Closing the shell's stdin stops the server and removes the data.
        if let Some(mut child) = self.server.lock().unwrap().take() {
            drop(child.stdin.take());
            let _ = child.wait();
        }
    }
}

/// The folder of PostgreSQL's server programs: `pg_config --bindir`, or the newest under
/// Debian's `/usr/lib/postgresql`.
fn server_bin() -> PathBuf {
    let from_pg_config = Command::new("pg_config")
        .arg("--bindir")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| PathBuf::from(String::from_utf8_lossy(&o.stdout).trim()))
        .filter(|dir| dir.join("initdb").exists());
    if let Some(dir) = from_pg_config {
        return dir;
    }
    let mut versions: Vec<PathBuf> = std::fs::read_dir("/usr/lib/postgresql")
        .map(|entries| {
            entries
                .filter_map(|e| e.ok())
                .map(|e| e.path().join("bin"))
                .collect()
        })
        .unwrap_or_default();
    versions.retain(|dir| dir.join("initdb").exists());
    versions.sort_by_key(|dir| {
        dir.parent()
            .and_then(Path::file_name)
            .and_then(|v| v.to_str())
            .and_then(|v| v.parse::<u32>().ok())
            .unwrap_or(0)
    });
    versions.pop().expect(
        "PostgreSQL's server programs (initdb, postgres) are missing: apt-get install postgresql \
         (`.ci/run` does)",
    )
}

/// Uid and gid of the `postgres` user (made by Debian's package).
fn postgres_user() -> (u32, u32) {
    let passwd = std::fs::read_to_string("/etc/passwd").expect("/etc/passwd");
    passwd
        .lines()
        .find_map(|line| {
            let fields: Vec<&str> = line.split(':').collect();
            (fields.first() == Some(&"postgres"))
                .then(|| Some((fields.get(2)?.parse().ok()?, fields.get(3)?.parse().ok()?)))
                .flatten()
        })
        .expect("the tests run as root: they need the `postgres` user of Debian's package")
}

fn as_owner(mut command: Command, owner: Option<(u32, u32)>) -> Command {
    if let Some((uid, gid)) = owner {
        command.uid(uid).gid(gid);
        command.env("HOME", "/tmp");
    }
    command
}

/// A port nobody listens on now.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

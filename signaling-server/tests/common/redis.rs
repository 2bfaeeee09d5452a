//! A real `redis-server` per test: a free loopback port, a temporary folder, append-only
//! persistence (so a stop and restart keeps rooms, as a deployment's would), killed when
//! dropped. Tests that need one skip, saying so, where `redis-server` is not installed
//! (`scripts/install-deps.sh` installs it, so CI runs them).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

pub(crate) struct RedisServer {
    child: Option<Child>,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

/// The `redis-server` binary, if installed.
pub(crate) fn binary() -> Option<PathBuf> {
    let candidates = std::env::var_os("PATH")
        .map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .unwrap_or_default()
        .into_iter()
        .chain([PathBuf::from("/usr/bin"), PathBuf::from("/usr/sbin")]);
    for d in candidates {
        let b = d.join("redis-server");
        if b.is_file() {
            return Some(b);
        }
    }
    None
}

/// Start one, or print why the calling test is skipped and return `None`.
pub(crate) fn start_or_skip(test: &str) -> Option<RedisServer> {
    if binary().is_none() {
        eprintln!(
            "SKIP {test}: redis-server is not installed (scripts/install-deps.sh installs it)"
        );
        return None;
    }
    Some(RedisServer::start())
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

impl RedisServer {
    pub(crate) fn start() -> RedisServer {
        let dir = tempfile::tempdir().unwrap();
        let addr: SocketAddr = format!("127.0.0.1:{}", free_port()).parse().unwrap();
        let mut r = RedisServer {
            child: None,
            addr,
            dir,
        };
        r.spawn();
        r
    }

    pub(crate) fn url(&self) -> String {
        format!("redis://{}/", self.addr)
    }

    pub(crate) fn dir(&self) -> &std::path::Path {
        self.dir.path()
    }

    fn spawn(&mut self) {
        let bin = binary().expect("redis-server installed");
        let mut cmd = Command::new(bin);
        // Dies with the thread that started it, so one a test keeps for a whole server's life
        // (see `shared_for`) does not outlive the test.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let child = cmd
            .args([
                "--bind",
                "127.0.0.1",
                "--port",
                &self.addr.port().to_string(),
                "--dir",
                &self.dir.path().display().to_string(),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--daemonize",
                "no",
                "--protected-mode",
                "no",
                "--loglevel",
                "warning",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server starts");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !self.pong() {
            assert!(Instant::now() < deadline, "redis-server did not answer");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn pong(&self) -> bool {
        let Ok(mut s) = TcpStream::connect_timeout(&self.addr, Duration::from_millis(200)) else {
            return false;
        };
        let _ = s.set_read_timeout(Some(Duration::from_millis(500)));
        if s.write_all(b"PING\r\n").is_err() {
            return false;
        }
        let mut b = [0u8; 7];
        s.read_exact(&mut b).is_ok() && &b == b"+PONG\r\n"
    }

    /// Stop it as an operator would (SIGTERM: the append-only file is flushed).
    pub(crate) fn stop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &c.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(10);
            while c.try_wait().ok().flatten().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Start it again on the same port and folder.
    pub(crate) fn restart(&mut self) {
        self.stop();
        self.spawn();
    }

    pub(crate) fn pid(&self) -> Option<u32> {
        self.child.as_ref().map(Child::id)
    }
}

/// Whether this run of the suite uses the Redis backend (`FERRY_SIGNAL_TEST_REDIS=1`).
pub(crate) fn suite_on_redis() -> bool {
    std::env::var("FERRY_SIGNAL_TEST_REDIS").ok().as_deref() == Some("1")
}

/// The Redis a suite server with session store `key` uses: the same one again for the same
/// key (a restart finds its rooms), a new one otherwise. Kept until the test's thread ends.
/// Returns its URL and data folder.
pub(crate) fn shared_for(key: Option<&std::path::Path>) -> (String, PathBuf) {
    use std::collections::HashMap;
    use std::sync::Mutex;
    static ALL: Mutex<Option<HashMap<PathBuf, RedisServer>>> = Mutex::new(None);
    static N: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
    let key = key.map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(format!(
            ":memory:{}",
            N.fetch_add(1, std::sync::atomic::Ordering::Relaxed)
        ))
    });
    let mut all = ALL.lock().unwrap_or_else(|p| p.into_inner());
    let r = all
        .get_or_insert_with(HashMap::new)
        .entry(key)
        .or_insert_with(|| {
            binary().expect(
            "FERRY_SIGNAL_TEST_REDIS=1 needs redis-server (scripts/install-deps.sh installs it)",
        );
            RedisServer::start()
        });
    (r.url(), r.dir().to_path_buf())
}

/// Where a suite server with SQLite file `db` really stores its rooms: that file's folder,
/// or its Redis's data folder when the suite runs on Redis.
pub(crate) fn stored_dir(db: &std::path::Path) -> PathBuf {
    if suite_on_redis() {
        shared_for(Some(db)).1
    } else {
        db.parent().map(PathBuf::from).unwrap_or_default()
    }
}

impl Drop for RedisServer {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

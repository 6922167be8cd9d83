//! A throwaway PostgreSQL cluster for the tests: Debian's `postgresql` binaries, started
//! once per test run in a temporary directory (as the `postgres` user when the tests run as
//! root, since `initdb` refuses root), reached over a Unix socket in that directory, with
//! durability off (`fsync=off`) because it is thrown away. Each test gets its own database,
//! copied from a migrated template.
//!
//! Without the binaries the PostgreSQL tests fail when `CI` is set, and are skipped with a
//! note on stderr otherwise.

#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Mutex, OnceLock};

const TEMPLATE: &str = "parley_template";

pub struct Cluster {
    bin: PathBuf,
    socket_dir: PathBuf,
    /// Creating databases from one template is done one at a time.
    create: Mutex<()>,
}

static CLUSTER: OnceLock<Result<Cluster, String>> = OnceLock::new();
static NEXT_DATABASE: AtomicUsize = AtomicUsize::new(0);

/// The newest installed PostgreSQL's `bin` directory.
fn find_bin() -> Option<PathBuf> {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .filter_map(|e| e.ok())
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").exists())
        .collect();
    versions.sort();
    versions.pop().map(|(_, bin)| bin)
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// Runs a PostgreSQL program, as `postgres` when the tests run as root.
fn run_as_owner(program: &Path, args: &[&str]) -> Result<(), String> {
    let mut command = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--"]).arg(program);
        c
    } else {
        Command::new(program)
    };
    let output = command
        .args(args)
        .output()
        .map_err(|e| format!("{}: {e}", program.display()))?;
    if !output.status.success() {
        return Err(format!(
            "{} {args:?} failed: {}{}",
            program.display(),
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(())
}

fn start() -> Result<Cluster, String> {
    let bin =
        find_bin().ok_or("no PostgreSQL under /usr/lib/postgresql (apt-get install postgresql)")?;
    let dir = tempfile::Builder::new()
        .prefix("parley-pg-")
        .tempdir()
        .map_err(|e| e.to_string())?
        .keep();
    if is_root() {
        let owner = Command::new("id")
            .args(["-u", "postgres"])
            .output()
            .map_err(|e| e.to_string())?;
        let uid: u32 = String::from_utf8_lossy(&owner.stdout)
            .trim()
            .parse()
            .map_err(|_| "no postgres user".to_string())?;
        std::os::unix::fs::chown(&dir, Some(uid), None).map_err(|e| e.to_string())?;
    }
    let data = dir.join("data");
    let data_arg = data.to_str().ok_or("temp dir is not UTF-8")?;
    let dir_arg = dir.to_str().ok_or("temp dir is not UTF-8")?;
    run_as_owner(
        &bin.join("initdb"),
        &[
            "-D",
            data_arg,
            "-U",
            "postgres",
            "--auth=trust",
            "-E",
            "UTF8",
            "--no-sync",
        ],
    )?;
    let options = format!(
        "-k {dir_arg} -c listen_addresses='' -c fsync=off -c synchronous_commit=off \
         -c full_page_writes=off -c max_connections=2000 -c shared_buffers=64MB"
    );
    let log = format!("{dir_arg}/postgres.log");
    run_as_owner(
        &bin.join("pg_ctl"),
        &["-D", data_arg, "-l", &log, "-o", &options, "-w", "start"],
    )?;
    // Stops the cluster and removes it once this test process has exited.
    let pg_ctl = bin.join("pg_ctl");
    let watchdog = format!(
        "while [ -d /proc/{pid} ]; do sleep 1; done; {pg_ctl} -D {data_arg} stop -m immediate; rm -rf {dir_arg}",
        pid = std::process::id(),
        pg_ctl = pg_ctl.display(),
    );
    let mut command = if is_root() {
        let mut c = Command::new("runuser");
        c.args(["-u", "postgres", "--", "sh", "-c", &watchdog]);
        c
    } else {
        let mut c = Command::new("sh");
        c.args(["-c", &watchdog]);
        c
    };
    command
        .stdin(std::process::Stdio::null())
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .map_err(|e| e.to_string())?;
    let cluster = Cluster {
        bin,
        socket_dir: dir,
        create: Mutex::new(()),
    };
    let mut admin = cluster.connect("postgres")?;
    admin
        .batch_execute(&format!("CREATE DATABASE {TEMPLATE}"))
        .map_err(|e| e.to_string())?;
    let mut template = cluster.connect(TEMPLATE)?;
    parley::store::postgres::migrate(&mut template).map_err(|e| e.to_string())?;
    Ok(cluster)
}

impl Cluster {
    /// The connection string of database `name`.
    pub fn url(&self, name: &str) -> String {
        format!(
            "host={} user=postgres dbname={name}",
            self.socket_dir.display()
        )
    }

    /// A plain connection (from a thread that is not running async code).
    pub fn connect(&self, name: &str) -> Result<postgres::Client, String> {
        postgres::Client::connect(&self.url(name), postgres::NoTls).map_err(|e| e.to_string())
    }

    /// A new, migrated, empty database; returns its connection string.
    pub fn fresh_database(&'static self) -> String {
        let name = format!(
            "parley_test_{}_{}",
            std::process::id(),
            NEXT_DATABASE.fetch_add(1, Ordering::SeqCst)
        );
        let create = name.clone();
        // The sync client runs its own runtime: keep it off the test's.
        std::thread::spawn(move || {
            let _one_at_a_time = self.create.lock().unwrap_or_else(|e| e.into_inner());
            let mut admin = self.connect("postgres")?;
            admin
                .batch_execute(&format!("CREATE DATABASE {create} TEMPLATE {TEMPLATE}"))
                .map_err(|e| format!("{e:?}"))
        })
        .join()
        .expect("the database thread does not panic")
        .expect("a test database can be created");
        self.url(&name)
    }

    /// A new database with no tables at all; returns its connection string.
    pub fn empty_database(&'static self) -> String {
        let name = format!(
            "parley_empty_{}_{}",
            std::process::id(),
            NEXT_DATABASE.fetch_add(1, Ordering::SeqCst)
        );
        let create = name.clone();
        std::thread::spawn(move || {
            let mut admin = self.connect("postgres")?;
            admin
                .batch_execute(&format!("CREATE DATABASE {create}"))
                .map_err(|e| e.to_string())
        })
        .join()
        .expect("the database thread does not panic")
        .expect("a test database can be created");
        self.url(&name)
    }

    /// Runs `f` with a connection to the database at `url`, on a thread of its own.
    pub fn with_client<T: Send + 'static>(
        url: &str,
        f: impl FnOnce(&mut postgres::Client) -> T + Send + 'static,
    ) -> T {
        let url = url.to_string();
        std::thread::spawn(move || {
            let mut client = postgres::Client::connect(&url, postgres::NoTls)
                .expect("the test database accepts connections");
            f(&mut client)
        })
        .join()
        .expect("the database thread does not panic")
    }
}

/// The shared cluster, started on first use; `None` (with a note) when PostgreSQL is not
/// installed and `CI` is not set. In CI a missing PostgreSQL fails the test.
pub fn cluster() -> Option<&'static Cluster> {
    let started = CLUSTER.get_or_init(|| {
        std::thread::spawn(start)
            .join()
            .unwrap_or_else(|_| Err("starting PostgreSQL panicked".into()))
    });
    match started {
        Ok(cluster) => Some(cluster),
        Err(e) if std::env::var_os("CI").is_some() => panic!("PostgreSQL is required in CI: {e}"),
        Err(e) => {
            eprintln!("SKIPPED: PostgreSQL tests need PostgreSQL: {e}");
            None
        }
    }
}

/// Whether the API tests run against PostgreSQL (`PARLEY_TEST_BACKEND=postgres`).
pub fn tests_use_postgres() -> bool {
    std::env::var("PARLEY_TEST_BACKEND").is_ok_and(|b| b == "postgres")
}

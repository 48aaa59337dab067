//! Ingest throughput, ingest peak memory and random access to one B-scan of a large bundle.
//!
//! Run with `cargo bench -p readroom-tests --bench ingest_bench`. It prints a table and
//! overwrites `BENCHMARKS.md` at the workspace root.
//!
//! What it does, all on real library code and temporary files on the same disk:
//!
//! 1. Writes two synthetic bundles (≈1 GB and ≈250 MB): one OCT exam of 1024×1024 8-bit
//!    grayscale noise PNG B-scans (stored deflate, so ≈1 MB each), an en-face PNG and a fundus
//!    JPEG. Noise does not compress, which is the worst case for the stored zip anyway.
//! 2. Ingests each into a local store with SQLite, in a child process (this binary re-executed
//!    with `READROOM_BENCH_CHILD` set), so the child's `VmHWM` is the peak RSS of the ingest
//!    alone, not of the bundle generation.
//! 3. Opens the 1 GB object 20 times through `RangeReader` + `EncryptedBundle` and reads the
//!    manifest and the middle B-scan, counting what was fetched from the store.
//! 4. Breaks the ingest time down: the gate alone, and pack + age + SHA-256 into a sink (the
//!    ingest minus the store), so what remains is the store (writes, fsync, rename) and the DB.

use std::io::{self, BufWriter, Write};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use image::ImageEncoder;
use image::codecs::jpeg::JpegEncoder;
use image::codecs::png::{CompressionType, FilterType, PngEncoder};
use readroom_bundle::gate::{self, GateOptions};
use readroom_bundle::{BundleSource, PackWriter, SourceLimits};
use readroom_server::db::{Db, Recipients, StudyCode};
use readroom_server::ingest::{IngestOptions, ingest};
use readroom_store::ObjectStore;
use readroom_store::blocking::RangeReader;
use readroom_store::local::LocalStore;
use readroom_worker::keys;
use readroom_worker::reader::EncryptedBundle;
use sha2::{Digest, Sha256};

const STUDY: &str = "BENCH";
const CHILD_ENV: &str = "READROOM_BENCH_CHILD";
const DATA_ENV: &str = "READROOM_BENCH_DATA";
const BUNDLE_ENV: &str = "READROOM_BENCH_BUNDLE";
const RESULT_PREFIX: &str = "BENCH-CHILD-RESULT ";

const FRAME_SIDE: u32 = 1024;
const LARGE_FRAMES: usize = 1000;
const SMALL_FRAMES: usize = 250;
const OPENS: usize = 20;
/// Ingests of each size; the machine is shared, so one run can be disturbed.
const RUNS: usize = 2;
const BLOCK_SIZE: usize = 64 * 1024;

const TARGET_MB_S: f64 = 300.0;
const TARGET_RSS_MB: f64 = 150.0;
const TARGET_FRACTION: f64 = 0.01;
/// Peaks of the two sizes closer than this count as the same (allocator and timing noise).
const RSS_SAME_MB: f64 = 10.0;

fn main() -> Result<()> {
    if std::env::var_os(CHILD_ENV).is_some() {
        return child();
    }
    parent()
}

// ---------------------------------------------------------------------------------------------
// Child: one ingest, then report the peak RSS.

/// What the child reports, as one JSON line on stdout.
#[derive(Debug)]
struct ChildResult {
    object_key: String,
    files: usize,
    source_bytes: u64,
    plaintext_bytes: u64,
    ciphertext_bytes: u64,
    elapsed: Duration,
    hwm_before_kb: u64,
    hwm_after_kb: u64,
}

fn child() -> Result<()> {
    let data = PathBuf::from(std::env::var_os(DATA_ENV).context("READROOM_BENCH_DATA")?);
    let bundle = PathBuf::from(std::env::var_os(BUNDLE_ENV).context("READROOM_BENCH_BUNDLE")?);
    let runtime = tokio::runtime::Runtime::new()?;
    runtime.block_on(async {
        let db = Db::connect(&sqlite_url(&data)).await?;
        let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::open(data.join("store"))?);
        let hwm_before_kb = proc_status_kb("VmHWM")?;
        let audit = readroom_server::audit::Audit::start(db.clone());
        let report = ingest(&db, &audit, store, &bundle, STUDY, IngestOptions::default())
            .await
            .map_err(|err| anyhow::anyhow!("ingest failed: {err}"))?;
        let hwm_after_kb = proc_status_kb("VmHWM")?;
        db.close().await;
        let json = serde_json::json!({
            "object_key": report.object_key,
            "files": report.files,
            "source_bytes": report.source_bytes,
            "plaintext_bytes": report.plaintext_bytes,
            "ciphertext_bytes": report.ciphertext_bytes,
            "elapsed_s": report.elapsed.as_secs_f64(),
            "hwm_before_kb": hwm_before_kb,
            "hwm_after_kb": hwm_after_kb,
        });
        println!("{RESULT_PREFIX}{json}");
        Ok(())
    })
}

fn run_child(data: &Path, bundle: &Path) -> Result<ChildResult> {
    let exe = std::env::current_exe()?;
    let output = Command::new(exe)
        .env(CHILD_ENV, "1")
        .env(DATA_ENV, data)
        .env(BUNDLE_ENV, bundle)
        .output()
        .context("running the ingest child")?;
    let stdout = String::from_utf8_lossy(&output.stdout);
    if !output.status.success() {
        bail!(
            "ingest child failed ({}):\n{stdout}\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let line = stdout
        .lines()
        .find_map(|line| line.strip_prefix(RESULT_PREFIX))
        .context("the ingest child printed no result")?;
    let value: serde_json::Value = serde_json::from_str(line)?;
    let u = |key: &str| {
        value[key]
            .as_u64()
            .with_context(|| format!("child result {key}"))
    };
    Ok(ChildResult {
        object_key: value["object_key"]
            .as_str()
            .context("object_key")?
            .to_owned(),
        files: u("files")? as usize,
        source_bytes: u("source_bytes")?,
        plaintext_bytes: u("plaintext_bytes")?,
        ciphertext_bytes: u("ciphertext_bytes")?,
        elapsed: Duration::from_secs_f64(value["elapsed_s"].as_f64().context("elapsed_s")?),
        hwm_before_kb: u("hwm_before_kb")?,
        hwm_after_kb: u("hwm_after_kb")?,
    })
}

fn proc_status_kb(field: &str) -> Result<u64> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(field)?.strip_prefix(':'))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("{field} in /proc/self/status"))
}

fn sqlite_url(data: &Path) -> String {
    format!("sqlite://{}", data.join("readroom.db").display())
}

// ---------------------------------------------------------------------------------------------
// Parent.

struct RandomRead {
    object_size: u64,
    frame_path: String,
    frame_bytes: u64,
    open_bytes: u64,
    open_requests: u64,
    total_bytes: u64,
    total_requests: u64,
    times: Vec<Duration>,
}

struct Breakdown {
    /// `BundleSource::open` + `gate::check` of the whole bundle.
    gate: Duration,
    /// Pack + age + SHA-256 of the whole bundle into a sink, on one thread (as in `ingest`).
    pack_encrypt: Duration,
    /// SHA-256 alone, MB/s, on an in-memory buffer.
    sha256_mb_s: f64,
    /// age encryption alone (ChaCha20-Poly1305 STREAM), MB/s, on an in-memory buffer.
    age_mb_s: f64,
    /// Writing a copy of the stored object in 8 MiB chunks (to the page cache), then its fsync.
    copy_write: Duration,
    copy_fsync: Duration,
}

fn parent() -> Result<()> {
    let started = Instant::now();
    let machine = machine();
    let load = load_average();
    println!("readroom ingest benchmark on {machine}; load average {load}");
    let dir = tempfile::Builder::new()
        .prefix("readroom-bench-")
        .tempdir()?;
    let identity = keys::generate(&dir.path().join("keys/worker.age"))?;
    let runtime = tokio::runtime::Runtime::new()?;

    // Bundles.
    let generation = Instant::now();
    let large = dir.path().join("bundle-large");
    write_bundle(&large, "S0001", LARGE_FRAMES, 1)?;
    let small = dir.path().join("bundle-small");
    write_bundle(&small, "S0002", SMALL_FRAMES, 2)?;
    println!(
        "bundles written in {:.1} s ({} + {} B-scans)",
        generation.elapsed().as_secs_f64(),
        LARGE_FRAMES,
        SMALL_FRAMES
    );

    // Ingests, each in its own process and into a fresh data directory (database, store,
    // study), alternating sizes so that load from other work on the machine hits both alike.
    // The first large run's store is kept for the random reads.
    let mut large_results = Vec::new();
    let mut small_results = Vec::new();
    let mut kept_data = None;
    for run in 0..RUNS {
        for (name, bundle) in [("~1 GB", &large), ("~250 MB", &small)] {
            let size = if bundle == &large { "large" } else { "small" };
            let data = dir.path().join(format!("data-{size}-{run}"));
            runtime.block_on(create_data_dir(&data, &identity.recipient()))?;
            let result = run_child(&data, bundle)?;
            println!(
                "ingest {name} (run {}): {:.2} s, {:.0} MB/s, peak RSS {:.1} MB",
                run + 1,
                result.elapsed.as_secs_f64(),
                mb_s(result.source_bytes, result.elapsed),
                kb_to_mb(result.hwm_after_kb)
            );
            if bundle == &large {
                if kept_data.is_none() {
                    kept_data = Some((data.clone(), result.object_key.clone()));
                } else {
                    std::fs::remove_dir_all(&data)?;
                }
                large_results.push(result);
            } else {
                std::fs::remove_dir_all(&data)?;
                small_results.push(result);
            }
        }
    }
    let (data, object_key) = kept_data.context("no large ingest")?;
    let large_result = &large_results[0];

    // Random access to the middle B-scan of the large object.
    let store: Arc<dyn ObjectStore> = Arc::new(LocalStore::open(data.join("store"))?);
    let identity = Arc::new(identity);
    let random = runtime.block_on(random_read(
        store,
        identity,
        &object_key,
        large_result.ciphertext_bytes,
    ))?;

    // Where the ingest time goes.
    let object_path = data.join("store").join(&object_key);
    let breakdown = breakdown(&large, &object_path, dir.path())?;

    drop(runtime);
    let total = started.elapsed();
    let report = render(
        &machine,
        &load,
        &large_results,
        &small_results,
        &random,
        &breakdown,
        total,
    );
    println!("\n{report}");
    let path =
        readroom_tests::report::write_section("## Ingest and random access (issue 2)", &report)
            .context("writing BENCHMARKS.md")?;
    println!("wrote {}", path.display());
    dir.close()?;
    Ok(())
}

/// A data directory with a SQLite database and study `BENCH` encrypting to `recipient`.
async fn create_data_dir(data: &Path, recipient: &str) -> Result<()> {
    std::fs::create_dir_all(data)?;
    let db = Db::connect(&sqlite_url(data)).await?;
    db.migrate().await?;
    db.create_study(
        &StudyCode::new(STUDY)?,
        "bench",
        &Recipients::new([recipient])?,
    )
    .await?;
    db.close().await;
    Ok(())
}

async fn random_read(
    store: Arc<dyn ObjectStore>,
    identity: Arc<keys::WorkerIdentity>,
    key: &str,
    ciphertext_bytes: u64,
) -> Result<RandomRead> {
    let object_size = store.head(key).await?.size;
    if object_size != ciphertext_bytes {
        bail!("head says {object_size} bytes, ingest said {ciphertext_bytes}");
    }
    let mut result: Option<RandomRead> = None;
    let mut times = Vec::with_capacity(OPENS);
    for _ in 0..OPENS {
        let store = store.clone();
        let identity = identity.clone();
        let key = key.to_owned();
        let handle = tokio::runtime::Handle::current();
        let one = tokio::task::spawn_blocking(move || -> Result<RandomRead> {
            let started = Instant::now();
            let reader = RangeReader::new(store, &key, object_size, handle, BLOCK_SIZE);
            let stats = reader.stats();
            let mut bundle = EncryptedBundle::open(reader, std::iter::once(identity.as_age()))?;
            let (open_bytes, open_requests) = (stats.bytes_fetched(), stats.requests());
            let frames = bundle
                .manifest()
                .exams
                .iter()
                .find_map(|exam| exam.frames.clone())
                .context("no OCT frames in the manifest")?;
            let frame_path = frames[frames.len() / 2].clone();
            let frame = bundle.read_entry(&frame_path, 64 << 20)?;
            let elapsed = started.elapsed();
            if !frame.starts_with(b"\x89PNG\r\n\x1a\n") {
                bail!("{frame_path} did not decrypt to a PNG");
            }
            Ok(RandomRead {
                object_size,
                frame_path,
                frame_bytes: frame.len() as u64,
                open_bytes,
                open_requests,
                total_bytes: stats.bytes_fetched(),
                total_requests: stats.requests(),
                times: vec![elapsed],
            })
        })
        .await??;
        times.push(one.times[0]);
        result = Some(one);
    }
    let mut result = result.context("no opens")?;
    times.sort();
    result.times = times;
    Ok(result)
}

/// Times the gate alone, then pack + age + SHA-256 into a sink (the ingest without the store).
fn breakdown(bundle: &Path, object: &Path, scratch: &Path) -> Result<Breakdown> {
    let identity = age::x25519::Identity::generate();
    let recipient = identity.to_public();

    let started = Instant::now();
    let mut source = BundleSource::open(bundle, &SourceLimits::default())?;
    let options = GateOptions {
        study: STUDY.to_owned(),
        ..Default::default()
    };
    let checked = gate::check(&mut source, &options).map_err(|rej| anyhow::anyhow!("{rej}"))?;
    let gate = started.elapsed();

    let started = Instant::now();
    let mut sink = HashSink::default();
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))?;
    let encrypted = encryptor.wrap_output(&mut sink)?;
    let mut pack = PackWriter::new(encrypted);
    for path in checked.pack_order() {
        if path == readroom_domain::manifest::MANIFEST_FILE {
            let bytes = checked.manifest_bytes.as_slice();
            pack.add_sized(&path, bytes.len() as u64, &mut &*bytes)?;
        } else {
            let size = source.entry(&path).map_or(0, |entry| entry.size);
            let mut reader = source.open_entry(&path)?;
            pack.add_sized(&path, size, &mut reader)?;
        }
    }
    pack.finish()?.finish()?;
    let pack_encrypt = started.elapsed();
    std::hint::black_box(sink.hasher.finalize());
    drop(source);

    // The two CPU costs of the pack thread, alone, on 256 MiB of noise in memory.
    let mut buffer = vec![0u8; 256 << 20];
    Rng::new(99).fill(&mut buffer);
    let started = Instant::now();
    std::hint::black_box(Sha256::digest(&buffer));
    let sha256_mb_s = mb_s(buffer.len() as u64, started.elapsed());
    let started = Instant::now();
    let encryptor =
        age::Encryptor::with_recipients(std::iter::once(&recipient as &dyn age::Recipient))?;
    let mut encrypted = encryptor.wrap_output(io::sink())?;
    for piece in buffer.chunks(256 * 1024) {
        encrypted.write_all(piece)?;
    }
    encrypted.finish()?;
    let age_mb_s = mb_s(buffer.len() as u64, started.elapsed());
    drop(buffer);

    // What the local store does with the ciphertext: write it in 8 MiB chunks, then fsync.
    let mut input = std::fs::File::open(object)?;
    let copy_path = scratch.join("fsync-probe.bin");
    let mut output = std::fs::File::create(&copy_path)?;
    let mut chunk = vec![0u8; 8 << 20];
    let mut copy_write = Duration::ZERO;
    loop {
        let n = read_full(&mut input, &mut chunk)?;
        if n == 0 {
            break;
        }
        let started = Instant::now();
        output.write_all(&chunk[..n])?;
        copy_write += started.elapsed();
    }
    let started = Instant::now();
    output.sync_all()?;
    let copy_fsync = started.elapsed();
    drop(output);
    std::fs::remove_file(&copy_path)?;

    Ok(Breakdown {
        gate,
        pack_encrypt,
        sha256_mb_s,
        age_mb_s,
        copy_write,
        copy_fsync,
    })
}

fn read_full(input: &mut impl io::Read, buffer: &mut [u8]) -> io::Result<usize> {
    let mut filled = 0;
    while filled < buffer.len() {
        match input.read(&mut buffer[filled..])? {
            0 => break,
            n => filled += n,
        }
    }
    Ok(filled)
}

#[derive(Default)]
struct HashSink {
    hasher: Sha256,
}

impl Write for HashSink {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.hasher.update(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

// ---------------------------------------------------------------------------------------------
// Bundle generation.

/// xorshift64*: fast, deterministic, good enough for incompressible noise.
struct Rng(u64);

impl Rng {
    fn new(seed: u64) -> Rng {
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn fill(&mut self, buf: &mut [u8]) {
        let mut chunks = buf.chunks_exact_mut(8);
        for chunk in &mut chunks {
            chunk.copy_from_slice(&self.next().to_le_bytes());
        }
        let rest = chunks.into_remainder();
        let bytes = self.next().to_le_bytes();
        rest.copy_from_slice(&bytes[..rest.len()]);
    }
}

fn write_png_gray(path: &Path, pixels: &[u8], width: u32, height: u32) -> Result<()> {
    let file = BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    PngEncoder::new_with_quality(file, CompressionType::Uncompressed, FilterType::NoFilter)
        .write_image(pixels, width, height, image::ExtendedColorType::L8)?;
    Ok(())
}

/// Writes a bundle directory: `oct_od/NNNN.png` B-scans, `slo_od.png`, `fundus_od.jpg`.
fn write_bundle(dir: &Path, subject: &str, frames: usize, seed: u64) -> Result<()> {
    let oct_dir = dir.join("oct_od");
    std::fs::create_dir_all(&oct_dir)?;
    let names: Vec<String> = (0..frames).map(|i| format!("oct_od/{i:04}.png")).collect();

    // B-scans on two threads.
    let threads = 2;
    std::thread::scope(|scope| -> Result<()> {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let names = &names;
                scope.spawn(move || -> Result<()> {
                    let side = FRAME_SIDE as usize;
                    let mut pixels = vec![0u8; side * side];
                    for (i, name) in names.iter().enumerate().skip(t).step_by(threads) {
                        Rng::new(seed << 32 | i as u64).fill(&mut pixels);
                        write_png_gray(&dir.join(name), &pixels, FRAME_SIDE, FRAME_SIDE)?;
                    }
                    Ok(())
                })
            })
            .collect();
        for handle in handles {
            handle.join().expect("generator thread panicked")?;
        }
        Ok(())
    })?;

    // En-face image: 512×512 noise.
    let mut rng = Rng::new(seed ^ 0x00E4_FACE);
    let mut enface = vec![0u8; 512 * 512];
    rng.fill(&mut enface);
    write_png_gray(&dir.join("slo_od.png"), &enface, 512, 512)?;

    // Fundus: 1024×1024 RGB gradient with a little noise, JPEG quality 90.
    let side = 1024usize;
    let mut rgb = vec![0u8; side * side * 3];
    for (i, px) in rgb.chunks_exact_mut(3).enumerate() {
        let (x, y) = (i % side, i / side);
        let noise = (rng.next() & 0x0F) as usize;
        px[0] = ((x * 200 / side) + noise) as u8;
        px[1] = ((y * 120 / side) + noise) as u8;
        px[2] = (40 + noise) as u8;
    }
    let file = BufWriter::new(std::fs::File::create(dir.join("fundus_od.jpg"))?);
    JpegEncoder::new_with_quality(file, 90).write_image(
        &rgb,
        side as u32,
        side as u32,
        image::ExtendedColorType::Rgb8,
    )?;

    let manifest = serde_json::json!({
        "format": "readroom-bundle/1",
        "study": STUDY,
        "subject": subject,
        "visit": "V1",
        "exams": [
            { "id": "fundus-od", "kind": "fundus", "eye": "OD", "file": "fundus_od.jpg",
              "pixel_spacing_um": 6.5 },
            { "id": "oct-od", "kind": "oct", "eye": "OD", "frames": names,
              "enface": "slo_od.png",
              "oct": { "lateral_um": 5.9, "axial_um": 3.9, "bscan_spacing_um": 6.0,
                       "enface_scan_rect": [32.0, 32.0, 480.0, 480.0] } }
        ]
    });
    std::fs::write(
        dir.join("manifest.json"),
        serde_json::to_vec_pretty(&manifest)?,
    )?;
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Reporting.

fn mb_s(bytes: u64, elapsed: Duration) -> f64 {
    bytes as f64 / 1e6 / elapsed.as_secs_f64().max(1e-9)
}

fn kb_to_mb(kb: u64) -> f64 {
    kb as f64 * 1024.0 / 1e6
}

fn machine() -> String {
    let cpus = std::thread::available_parallelism().map_or(0, |n| n.get());
    let model = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("model name"))
                .map(|rest| rest.trim_start_matches([' ', '\t', ':']).trim().to_owned())
        })
        .unwrap_or_else(|| "unknown CPU".to_owned());
    let memory = std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|info| {
            info.lines()
                .find_map(|line| line.strip_prefix("MemTotal:"))
                .and_then(|rest| {
                    rest.trim()
                        .trim_end_matches("kB")
                        .trim()
                        .parse::<u64>()
                        .ok()
                })
        })
        .map_or_else(String::new, |kb| {
            format!(", {:.0} GiB RAM", kb as f64 / 1048576.0)
        });
    format!(
        "{cpus} CPUs (nproc), {model}{memory}, {}",
        std::env::consts::OS
    )
}

/// The 1, 5 and 15 minute load averages: other work on the machine skews every number here.
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .ok()
        .map(|text| {
            text.split_whitespace()
                .take(3)
                .collect::<Vec<_>>()
                .join(" ")
        })
        .unwrap_or_else(|| "unknown".to_owned())
}

/// Today's date (UTC) as YYYY-MM-DD.
fn today() -> String {
    let secs = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    // Howard Hinnant's civil_from_days.
    let z = (secs / 86_400) as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

fn verdict(ok: bool) -> &'static str {
    if ok { "met" } else { "**missed**" }
}

fn render(
    machine: &str,
    load: &str,
    large_runs: &[ChildResult],
    small_runs: &[ChildResult],
    random: &RandomRead,
    breakdown: &Breakdown,
    total: Duration,
) -> String {
    let (large, small) = (&large_runs[0], &small_runs[0]);
    let rates = |runs: &[ChildResult]| -> Vec<f64> {
        runs.iter()
            .map(|r| mb_s(r.source_bytes, r.elapsed))
            .collect()
    };
    let peaks = |runs: &[ChildResult]| -> Vec<f64> {
        runs.iter().map(|r| kb_to_mb(r.hwm_after_kb)).collect()
    };
    let list = |values: &[f64], unit: &str| -> String {
        values
            .iter()
            .map(|v| format!("{v:.0} {unit}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let max = |values: &[f64]| values.iter().copied().fold(f64::MIN, f64::max);
    let min = |values: &[f64]| values.iter().copied().fold(f64::MAX, f64::min);
    let (large_rates, small_rates) = (rates(large_runs), rates(small_runs));
    let (large_peaks, small_peaks) = (peaks(large_runs), peaks(small_runs));
    let large_mb_s = max(&large_rates);
    let small_mb_s = max(&small_rates);
    let large_rss = max(&large_peaks);
    let small_rss = max(&small_peaks);
    let fraction = random.total_bytes as f64 / random.object_size as f64;
    let median = random.times[random.times.len() / 2];
    let (fastest, slowest) = (random.times[0], random.times[random.times.len() - 1]);
    let overhead = large.ciphertext_bytes as f64 / large.source_bytes as f64;
    let ms = |d: Duration| d.as_secs_f64() * 1e3;

    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line("## Ingest and random access (issue 2)".to_owned());
    line(String::new());
    line(format!("- Date: {} (UTC)", today()));
    line(format!(
        "- Machine: {machine}; load average at start (1/5/15 min): {load}"
    ));
    line("- Command: `cargo bench -p readroom-tests --bench ingest_bench`".to_owned());
    line(format!(
        "- Bundles: directory bundles in a temp dir on the same disk as the store; one OCT exam of \
         {FRAME_SIDE}×{FRAME_SIDE} 8-bit grayscale noise PNG B-scans (stored deflate, ≈1 MB each) \
         plus a 512×512 en-face PNG, and a 1024×1024 fundus JPEG. Store: `LocalStore` in a temp \
         dir; DB: SQLite file. Each ingest runs in a child process. The bundle files were just \
         written, so the ingest reads them from the page cache. Whole run: {:.0} s.",
        total.as_secs_f64()
    ));
    line(String::new());
    line("| measurement | value | target | |".to_owned());
    line("|---|---|---|---|".to_owned());
    line(format!(
        "| ingest ~1 GB ({} files, {:.1} MB source), best of {RUNS} | **{large_mb_s:.0} MB/s** (runs: {}; first run {:.2} s) | ≥ {TARGET_MB_S:.0} MB/s | {} |",
        large.files,
        large.source_bytes as f64 / 1e6,
        list(&large_rates, "MB/s"),
        large.elapsed.as_secs_f64(),
        verdict(large_mb_s >= TARGET_MB_S)
    ));
    line(format!(
        "| ingest ~250 MB ({} files, {:.1} MB source), best of {RUNS} | {small_mb_s:.0} MB/s (runs: {}; first run {:.2} s) | ≥ {TARGET_MB_S:.0} MB/s | {} |",
        small.files,
        small.source_bytes as f64 / 1e6,
        list(&small_rates, "MB/s"),
        small.elapsed.as_secs_f64(),
        verdict(small_mb_s >= TARGET_MB_S)
    ));
    line(format!(
        "| peak RSS of the ingest process (VmHWM), ~1 GB bundle, worst of {RUNS} | **{large_rss:.1} MB** (runs: {}; before the ingest: {:.1} MB) | < {TARGET_RSS_MB:.0} MB | {} |",
        list(&large_peaks, "MB"),
        kb_to_mb(large.hwm_before_kb),
        verdict(large_rss < TARGET_RSS_MB)
    ));
    line(format!(
        "| peak RSS of the ingest process (VmHWM), ~250 MB bundle, worst of {RUNS} | **{small_rss:.1} MB** (runs: {}; before the ingest: {:.1} MB) | < {TARGET_RSS_MB:.0} MB, and not growing with size (lowest peaks within {RSS_SAME_MB:.0} MB) | {} |",
        list(&small_peaks, "MB"),
        kb_to_mb(small.hwm_before_kb),
        verdict(
            small_rss < TARGET_RSS_MB
                && (min(&large_peaks) - min(&small_peaks)).abs() < RSS_SAME_MB
        )
    ));
    line(format!(
        "| ciphertext overhead (ciphertext / source), ~1 GB | {overhead:.5} ({} → {} plaintext zip → {} bytes) | | |",
        large.source_bytes, large.plaintext_bytes, large.ciphertext_bytes
    ));
    line(format!(
        "| random read: manifest + middle B-scan (`{}`, {} bytes) of the {:.1} MB object | {} bytes fetched in {} range requests | | |",
        random.frame_path,
        random.frame_bytes,
        random.object_size as f64 / 1e6,
        random.total_bytes,
        random.total_requests
    ));
    line(format!(
        "| … of which opening (age header, central directory, manifest) | {} bytes in {} requests | | |",
        random.open_bytes, random.open_requests
    ));
    // The frame's data spans at most this many age chunks (64 KiB plaintext + 16 byte tag each),
    // counting one more for the local header and the misalignment.
    let frame_chunks = random.frame_bytes.div_ceil(64 * 1024) + 1;
    line(format!(
        "| … of which the B-scan (local header + data) | {} bytes in {} requests; its ciphertext is at most ≈ {} bytes ({frame_chunks} age chunks) | | |",
        random.total_bytes - random.open_bytes,
        random.total_requests - random.open_requests,
        frame_chunks * (64 * 1024 + 16),
    ));
    line(format!(
        "| fraction of the object read | **{:.3} %** | < {:.0} % | {} |",
        fraction * 100.0,
        TARGET_FRACTION * 100.0,
        verdict(fraction < TARGET_FRACTION)
    ));
    line(format!(
        "| time to open + read manifest + middle B-scan, {} opens | median **{:.1} ms** (min {:.1}, max {:.1}) | | |",
        random.times.len(),
        ms(median),
        ms(fastest),
        ms(slowest)
    ));
    line(String::new());
    let gb = large.source_bytes as f64 / 1e9;
    let sha_s = large.source_bytes as f64 / 1e6 / breakdown.sha256_mb_s;
    let age_s = large.source_bytes as f64 / 1e6 / breakdown.age_mb_s;
    line(format!(
        "Where the ~1 GB ingest's {:.2} s go (each part measured separately in the parent process, \
         on the same bundle and stored object):",
        large.elapsed.as_secs_f64()
    ));
    line(String::new());
    line(format!(
        "| part | time | rate |\n|---|---|---|\n\
         | gate alone (walk, PNG/JPEG inspection with the CRC of every chunk) | {:.2} s | {:.0} MB/s |\n\
         | pack + age + SHA-256 of the ciphertext into a sink, serially on one thread (the ingest now hashes on the upload task instead) | {:.2} s | {:.0} MB/s |\n\
         | … SHA-256 alone (in memory) | ≈ {sha_s:.2} s | {:.0} MB/s |\n\
         | … age encryption alone (in memory) | ≈ {age_s:.2} s | {:.0} MB/s |\n\
         | store: write the {:.0} MB object in 8 MiB chunks (page cache) | {:.2} s | {:.0} MB/s |\n\
         | store: fsync of that file | {:.2} s | {:.0} MB/s |",
        breakdown.gate.as_secs_f64(),
        mb_s(large.source_bytes, breakdown.gate),
        breakdown.pack_encrypt.as_secs_f64(),
        mb_s(large.source_bytes, breakdown.pack_encrypt),
        breakdown.sha256_mb_s,
        breakdown.age_mb_s,
        large.ciphertext_bytes as f64 / 1e6,
        breakdown.copy_write.as_secs_f64(),
        mb_s(large.ciphertext_bytes, breakdown.copy_write),
        breakdown.copy_fsync.as_secs_f64(),
        mb_s(large.ciphertext_bytes, breakdown.copy_fsync),
    ));
    line(String::new());
    let lowest = min(&large_rates).min(min(&small_rates));
    let status = if lowest >= TARGET_MB_S {
        format!(
            "Ingest throughput met the target in every run (lowest {lowest:.0} MB/s), with little margin."
        )
    } else if large_mb_s >= TARGET_MB_S {
        format!(
            "**Ingest throughput reached {TARGET_MB_S:.0} MB/s only in some runs (lowest {lowest:.0} MB/s).**"
        )
    } else {
        format!("**Missed: ingest throughput ({large_mb_s:.0} MB/s < {TARGET_MB_S:.0} MB/s).**")
    };
    line(format!(
        "{status} Where the time goes: the pack thread is CPU-bound on age encryption \
         (≈ {age_s:.1} s for {gb:.2} GB); the SHA-256 of the ciphertext (≈ {sha_s:.1} s) runs on \
         the upload task, overlapping it on the other core together with the store's writes \
         (≈ {:.1} s); the final fsync adds ≈ {:.1} s after the last byte; the gate ({:.2} s) is \
         small. With {cpus} cores shared with other jobs (load average at start: {load}) the runs \
         vary. Peak RSS is bounded by the upload pipeline (about four 8 MiB \
         chunks in flight: one being filled, two in the channel, one being written), not by the \
         bundle's size; the spread between runs is allocator and timing noise.",
        breakdown.copy_write.as_secs_f64(),
        breakdown.copy_fsync.as_secs_f64(),
        breakdown.gate.as_secs_f64(),
        cpus = std::thread::available_parallelism().map_or(0, |n| n.get()),
    ));
    out
}

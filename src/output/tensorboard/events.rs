//! TensorBoard event files (scalars and text), no TensorFlow needed.
//!
//! File format: a TFRecord stream of `tensorboard.Event` protobufs ([`super::proto`]). Each
//! record is `u64 len (LE) | masked_crc32c(len bytes) | data | masked_crc32c(data)`.

use super::proto::*;
use prost::Message;
use std::fs::{self, File, OpenOptions};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

/// Appends events to one `events.out.tfevents.*` file.
pub struct EventWriter {
    file: File,
    path: PathBuf,
}

/// Distinguishes writers created by one process within the same second,
/// like the trailing counter in TF / tensorboardX file names.
static FILE_COUNTER: AtomicU64 = AtomicU64::new(0);

impl EventWriter {
    /// Creates `dir/<run>/events.out.tfevents.{unix_secs}.{hostname}.{pid}.{n}`.
    ///
    /// TensorBoard names a run after the directory holding its event files, so
    /// `<run>` is `run_name_hint` with characters outside `[A-Za-z0-9._-]`
    /// replaced by `_`; if that directory already exists, `-2`, `-3`, ... is
    /// appended so separate trainings never merge into one run. An empty hint
    /// writes directly into `dir`.
    pub fn create(dir: &Path, run_name_hint: &str) -> io::Result<Self> {
        fs::create_dir_all(dir)?;
        let run_dir = if run_name_hint.is_empty() {
            dir.to_path_buf()
        } else {
            unique_run_dir(dir, &sanitize(run_name_hint))?
        };
        let now = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default()
            .as_secs();
        let name = format!(
            "events.out.tfevents.{now:010}.{}.{}.{}",
            hostname(),
            std::process::id(),
            FILE_COUNTER.fetch_add(1, Ordering::Relaxed)
        );
        let path = run_dir.join(name);
        let file = OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path)?;
        let mut w = EventWriter { file, path };
        w.write_event(Event {
            wall_time: wall_time(),
            step: 0,
            what: Some(event::What::FileVersion("brain.Event:2".to_string())),
        })?;
        Ok(w)
    }

    /// Path of the event file being written.
    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Directory TensorBoard shows as the run.
    pub fn run_dir(&self) -> &Path {
        self.path.parent().expect("event file has a parent dir")
    }

    /// Logs a scalar (`simple_value`; TensorBoard's Scalars tab reads it as is).
    pub fn scalar(&mut self, tag: &str, step: i64, value: f32) -> io::Result<()> {
        self.write_summary(
            step,
            summary::Value {
                tag: tag.to_string(),
                value: Some(summary::value::Value::SimpleValue(value)),
                metadata: None,
            },
        )
    }

    /// Logs text for TensorBoard's Text tab (rendered as Markdown): a scalar
    /// DT_STRING tensor tagged with the `text` plugin, as `tf.summary.text` does.
    pub fn text(&mut self, tag: &str, step: i64, text: &str) -> io::Result<()> {
        self.write_summary(
            step,
            summary::Value {
                tag: tag.to_string(),
                value: Some(summary::value::Value::Tensor(TensorProto {
                    dtype: DT_STRING,
                    // Empty shape = rank-0 (scalar) tensor.
                    tensor_shape: Some(TensorShapeProto { dim: vec![] }),
                    string_val: vec![text.as_bytes().to_vec()],
                })),
                metadata: Some(SummaryMetadata {
                    plugin_data: Some(summary_metadata::PluginData {
                        plugin_name: "text".to_string(),
                        // Serialized TextPluginData{version: 0}, i.e. empty.
                        content: vec![],
                    }),
                    data_class: DATA_CLASS_TENSOR,
                }),
            },
        )
    }

    /// Records are already handed to the OS (and visible to readers) as they are
    /// written; this also forces them to disk.
    pub fn flush(&mut self) -> io::Result<()> {
        self.file.sync_data()
    }

    fn write_summary(&mut self, step: i64, value: summary::Value) -> io::Result<()> {
        self.write_event(Event {
            wall_time: wall_time(),
            step,
            what: Some(event::What::Summary(Summary { value: vec![value] })),
        })
    }

    /// Written atomically per record so the file is readable while the run goes
    /// on: the whole frame is built first and handed over in one `write_all` on
    /// an unbuffered `File`, so nothing sits in a user-space buffer and a reader
    /// can only ever see a partial record at the very end of the file (while the
    /// write is in progress or after a crash). TensorBoard's readers treat a
    /// truncated tail as "not yet written" and retry it on the next reload.
    fn write_event(&mut self, event: Event) -> io::Result<()> {
        let record = frame_record(&event.encode_to_vec());
        self.file.write_all(&record)?;
        self.file.flush()
    }
}

const CRC32C: crc::Crc<u32> = crc::Crc::<u32>::new(&crc::CRC_32_ISCSI);

/// TFRecord's masked CRC32C: rotate right by 15 and add a constant, so that a
/// CRC of data that itself contains CRCs stays well distributed.
fn masked_crc32c(data: &[u8]) -> u32 {
    CRC32C
        .checksum(data)
        .rotate_right(15)
        .wrapping_add(0xa282_ead8)
}

/// Frames `data` as one TFRecord.
fn frame_record(data: &[u8]) -> Vec<u8> {
    let len = (data.len() as u64).to_le_bytes();
    let mut rec = Vec::with_capacity(data.len() + 16);
    rec.extend_from_slice(&len);
    rec.extend_from_slice(&masked_crc32c(&len).to_le_bytes());
    rec.extend_from_slice(data);
    rec.extend_from_slice(&masked_crc32c(data).to_le_bytes());
    rec
}

fn wall_time() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs_f64()
}

fn sanitize(hint: &str) -> String {
    let s: String = hint
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    // "." and ".." would not name a new directory.
    if s.chars().all(|c| c == '.') {
        "run".to_string()
    } else {
        s
    }
}

/// `create_dir` (not `exists`) decides, so two processes cannot pick the same name.
fn unique_run_dir(dir: &Path, name: &str) -> io::Result<PathBuf> {
    for i in 1..10_000u32 {
        let candidate = if i == 1 {
            dir.join(name)
        } else {
            dir.join(format!("{name}-{i}"))
        };
        match fs::create_dir(&candidate) {
            Ok(()) => return Ok(candidate),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => continue,
            Err(e) => return Err(e),
        }
    }
    Err(io::Error::new(
        io::ErrorKind::AlreadyExists,
        format!("no free run directory for {name:?} in {}", dir.display()),
    ))
}

/// Host name without a libc dependency: Linux procfs, then the usual env vars.
fn hostname() -> String {
    let raw = fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .or_else(|| std::env::var("COMPUTERNAME").ok())
        .unwrap_or_default();
    let h: String = raw
        .trim()
        .chars()
        .filter(|c| !matches!(c, '/' | '\\'))
        .collect();
    if h.is_empty() {
        "localhost".to_string()
    } else {
        h
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Splits a TFRecord stream, checking both CRCs of every record.
    fn read_records(mut b: &[u8]) -> Vec<Vec<u8>> {
        let mut out = vec![];
        while !b.is_empty() {
            let len_bytes = &b[..8];
            let len = u64::from_le_bytes(len_bytes.try_into().unwrap()) as usize;
            let crc = |s: &[u8]| u32::from_le_bytes(s.try_into().unwrap());
            assert_eq!(crc(&b[8..12]), masked_crc32c(len_bytes), "length crc");
            let data = &b[12..12 + len];
            assert_eq!(crc(&b[12 + len..16 + len]), masked_crc32c(data), "data crc");
            out.push(data.to_vec());
            b = &b[16 + len..];
        }
        out
    }

    #[test]
    fn crc32c_and_mask_known_vectors() {
        // CRC-32C check value.
        assert_eq!(CRC32C.checksum(b"123456789"), 0xe306_9283);
        // Masked values from tensorboard's pywrap_tensorflow.masked_crc32c.
        assert_eq!(masked_crc32c(b"123456789"), 0xc78a_b0e5);
        assert_eq!(masked_crc32c(b"hello"), 0x191c_1fbb);
        assert_eq!(masked_crc32c(&5u64.to_le_bytes()), 0x3e04_b2ea);
    }

    #[test]
    fn record_framing() {
        let rec = frame_record(b"hello");
        assert_eq!(rec.len(), 8 + 4 + 5 + 4);
        assert_eq!(&rec[..8], &5u64.to_le_bytes());
        assert_eq!(&rec[8..12], &0x3e04_b2eau32.to_le_bytes());
        assert_eq!(&rec[12..17], b"hello");
        assert_eq!(&rec[17..], &0x191c_1fbbu32.to_le_bytes());
        assert_eq!(read_records(&rec), [b"hello".to_vec()]);
    }

    #[test]
    fn zero_scalar_matches_reference_encoding() {
        // Bytes from the Python protobuf: Event(wall_time=1.5, step=3,
        // summary{value{tag:"a", simple_value:0.0}}).
        let e = Event {
            wall_time: 1.5,
            step: 3,
            what: Some(event::What::Summary(Summary {
                value: vec![summary::Value {
                    tag: "a".into(),
                    value: Some(summary::value::Value::SimpleValue(0.0)),
                    metadata: None,
                }],
            })),
        };
        let hex: String = e
            .encode_to_vec()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect();
        assert_eq!(hex, "09000000000000f83f10032a0a0a080a01611500000000");
    }

    #[test]
    fn writes_readable_event_file() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let mut w = EventWriter::create(&dir, "mnist lr=0.1").unwrap();
        w.scalar("train/loss", 1, 0.5).unwrap();
        w.text("config", 0, "lr: 0.1").unwrap();
        w.flush().unwrap();

        assert_eq!(w.run_dir(), dir.join("mnist_lr_0.1"));
        let name = w.path().file_name().unwrap().to_str().unwrap().to_string();
        let parts: Vec<&str> = name.split('.').collect();
        assert_eq!(&parts[..3], ["events", "out", "tfevents"]);
        assert_eq!(parts[3].len(), 10, "unix seconds, 10 digits: {name}");
        assert_eq!(parts[parts.len() - 2], std::process::id().to_string());

        let events: Vec<Event> = read_records(&fs::read(w.path()).unwrap())
            .iter()
            .map(|r| Event::decode(&r[..]).unwrap())
            .collect();
        assert_eq!(events.len(), 3);
        assert_eq!(
            events[0].what,
            Some(event::What::FileVersion("brain.Event:2".into()))
        );
        assert!(events[0].wall_time > 1.6e9);
        let value = |e: &Event| match &e.what {
            Some(event::What::Summary(s)) => s.value[0].clone(),
            other => panic!("not a summary: {other:?}"),
        };
        let loss = value(&events[1]);
        assert_eq!((events[1].step, loss.tag.as_str()), (1, "train/loss"));
        assert_eq!(loss.value, Some(summary::value::Value::SimpleValue(0.5)));
        let text = value(&events[2]);
        assert_eq!(
            text.metadata.unwrap().plugin_data.unwrap().plugin_name,
            "text"
        );
        match text.value {
            Some(summary::value::Value::Tensor(t)) => {
                assert_eq!(t.dtype, DT_STRING);
                assert_eq!(t.string_val, [b"lr: 0.1".to_vec()]);
            }
            other => panic!("not a tensor: {other:?}"),
        }
    }

    #[test]
    fn same_hint_gets_separate_runs() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_path_buf();
        let a = EventWriter::create(&dir, "run").unwrap();
        let b = EventWriter::create(&dir, "run").unwrap();
        let c = EventWriter::create(&dir, "..").unwrap();
        let d = EventWriter::create(&dir, "").unwrap();
        assert_eq!(a.run_dir(), dir.join("run"));
        assert_eq!(b.run_dir(), dir.join("run-2"));
        assert_eq!(c.run_dir(), dir.join("run-3"));
        assert_eq!(d.run_dir(), dir);
    }
}

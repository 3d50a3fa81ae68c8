//! Hardware reports through Linux configfs-tsm (`/sys/kernel/config/tsm/report`, Linux ≥ 6.7):
//! one report directory per request, its provider checked before anything is written, the
//! 64 report_data bytes written to `inblob`, the report read from `outblob` (and the SNP
//! certificate table from `auxblob`), `generation` re-read so that a report another writer
//! interfered with is never handed out, and the directory removed after.

use std::fs;
use std::io;
use std::path::Path;

/// The providers whose reports we know how to read.
pub const PROVIDERS: [&str; 2] = ["sev_guest", "tdx_guest"];

#[derive(Debug)]
pub struct HardwareReport {
    pub provider: String,
    pub outblob: Vec<u8>,
    pub auxblob: Option<Vec<u8>>,
}

#[derive(Debug, thiserror::Error)]
pub enum TsmError {
    #[error("cannot make a report directory in {root}: {source}")]
    Create { root: String, source: io::Error },
    #[error("cannot {action} the report directory's {file}: {source}")]
    File {
        action: &'static str,
        file: &'static str,
        source: io::Error,
    },
    #[error("the report provider is {0:?}, not one of sev_guest, tdx_guest")]
    Provider(String),
    #[error("the report's generation is {0}, not 1: another writer used the report directory")]
    Interfered(String),
    #[error("the report is empty")]
    Empty,
}

/// How report directories come and go and are written: the kernel makes a configfs
/// directory's files on `mkdir`, makes the report when `inblob` is written and takes the files
/// away on `rmdir`; a test's fake does the same with plain files.
pub trait ReportDirs: Send + Sync {
    fn create(&self, dir: &Path) -> io::Result<()>;
    fn write(&self, file: &Path, bytes: &[u8]) -> io::Result<()>;
    fn remove(&self, dir: &Path) -> io::Result<()>;
}

/// The kernel's configfs.
pub struct Kernel;

impl ReportDirs for Kernel {
    fn create(&self, dir: &Path) -> io::Result<()> {
        fs::create_dir(dir)
    }
    fn write(&self, file: &Path, bytes: &[u8]) -> io::Result<()> {
        fs::write(file, bytes)
    }
    fn remove(&self, dir: &Path) -> io::Result<()> {
        fs::remove_dir(dir)
    }
}

/// One hardware report over `report_data` (blocking: run it off the async threads).
pub fn report(
    root: &Path,
    report_data: &[u8; 64],
    dirs: &dyn ReportDirs,
) -> Result<HardwareReport, TsmError> {
    let dir = root.join(format!("toolshed-{}", uuid::Uuid::new_v4().simple()));
    dirs.create(&dir).map_err(|source| TsmError::Create {
        root: root.display().to_string(),
        source,
    })?;
    let result = report_in(&dir, report_data, dirs);
    if let Err(e) = dirs.remove(&dir) {
        tracing::warn!(dir = %dir.display(), error = %e, "cannot remove an attestation report directory");
    }
    result
}

fn report_in(
    dir: &Path,
    report_data: &[u8; 64],
    dirs: &dyn ReportDirs,
) -> Result<HardwareReport, TsmError> {
    let file_error = |action, file| {
        move |source| TsmError::File {
            action,
            file,
            source,
        }
    };
    let provider = fs::read_to_string(dir.join("provider"))
        .map_err(file_error("read", "provider"))?
        .trim()
        .to_owned();
    if !PROVIDERS.contains(&provider.as_str()) {
        return Err(TsmError::Provider(provider));
    }
    dirs.write(&dir.join("inblob"), report_data)
        .map_err(file_error("write", "inblob"))?;
    let outblob = fs::read(dir.join("outblob")).map_err(file_error("read", "outblob"))?;
    if outblob.is_empty() {
        return Err(TsmError::Empty);
    }
    let auxblob = match fs::read(dir.join("auxblob")) {
        Ok(aux) if aux.is_empty() => None,
        Ok(aux) => Some(aux),
        // TDX has no certificate table to hand out.
        Err(e) if e.kind() == io::ErrorKind::NotFound => None,
        Err(e) => return Err(file_error("read", "auxblob")(e)),
    };
    // Every write to the directory bumps generation: ours made it 1.
    let generation = fs::read_to_string(dir.join("generation"))
        .map_err(file_error("read", "generation"))?
        .trim()
        .to_owned();
    if generation != "1" {
        return Err(TsmError::Interfered(generation));
    }
    Ok(HardwareReport {
        provider,
        outblob,
        auxblob,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A configfs-tsm stand-in with the kernel's files: `mkdir` makes `provider` and
    /// `generation` 0; writing `inblob` bumps `generation` (twice when another writer is
    /// simulated) and makes `outblob` (an SNP-sized report carrying inblob at 0x50) and
    /// `auxblob`; before that, `outblob` does not exist. `rmdir` keeps what inblob got.
    struct Fake {
        provider: &'static str,
        interfering_writer: bool,
        auxblob: Option<Vec<u8>>,
        written: Mutex<Option<Vec<u8>>>,
    }

    impl Fake {
        fn snp() -> Fake {
            Fake {
                provider: "sev_guest",
                interfering_writer: false,
                auxblob: Some(vec![0xcc; 10]),
                written: Mutex::new(None),
            }
        }
    }

    impl ReportDirs for Fake {
        fn create(&self, dir: &Path) -> io::Result<()> {
            fs::create_dir(dir)?;
            fs::write(dir.join("provider"), format!("{}\n", self.provider))?;
            fs::write(dir.join("generation"), "0\n")
        }
        fn write(&self, file: &Path, bytes: &[u8]) -> io::Result<()> {
            fs::write(file, bytes)?;
            let dir = file.parent().expect("a report directory");
            let generation = if self.interfering_writer { 2 } else { 1 };
            fs::write(dir.join("generation"), format!("{generation}\n"))?;
            let mut report = vec![0xaa; 1184];
            report[0x50..0x50 + bytes.len()].copy_from_slice(bytes);
            fs::write(dir.join("outblob"), report)?;
            if let Some(aux) = &self.auxblob {
                fs::write(dir.join("auxblob"), aux)?;
            }
            Ok(())
        }
        fn remove(&self, dir: &Path) -> io::Result<()> {
            *self.written.lock().expect("lock") = fs::read(dir.join("inblob")).ok();
            fs::remove_dir_all(dir)
        }
    }

    fn entries(root: &Path) -> usize {
        fs::read_dir(root).expect("read root").count()
    }

    #[test]
    fn a_report_is_read_and_its_directory_removed() {
        let root = tempfile::tempdir().expect("root");
        let fake = Fake::snp();
        let report = report(root.path(), &[7; 64], &fake).expect("report");
        assert_eq!(report.provider, "sev_guest");
        assert_eq!(report.outblob.len(), 1184);
        assert_eq!(
            report.outblob[0x50..0x90],
            [7; 64],
            "the report made from our inblob"
        );
        assert_eq!(report.auxblob, Some(vec![0xcc; 10]));
        assert_eq!(*fake.written.lock().expect("lock"), Some(vec![7; 64]));
        assert_eq!(entries(root.path()), 0);
    }

    #[test]
    fn a_tdx_quote_comes_without_aux() {
        let root = tempfile::tempdir().expect("root");
        let fake = Fake {
            provider: "tdx_guest",
            auxblob: None,
            ..Fake::snp()
        };
        let report = report(root.path(), &[7; 64], &fake).expect("report");
        assert_eq!(report.provider, "tdx_guest");
        assert_eq!(report.auxblob, None);
    }

    #[test]
    fn a_wrong_provider_is_refused_before_anything_is_written() {
        let root = tempfile::tempdir().expect("root");
        let fake = Fake {
            provider: "arm_cca_guest",
            ..Fake::snp()
        };
        let err = report(root.path(), &[7; 64], &fake).expect_err("refused");
        assert!(
            matches!(err, TsmError::Provider(ref p) if p == "arm_cca_guest"),
            "{err}"
        );
        assert_eq!(
            *fake.written.lock().expect("lock"),
            None,
            "inblob untouched"
        );
        assert_eq!(entries(root.path()), 0);
    }

    #[test]
    fn a_bumped_generation_is_refused() {
        let root = tempfile::tempdir().expect("root");
        let fake = Fake {
            interfering_writer: true,
            ..Fake::snp()
        };
        let err = report(root.path(), &[7; 64], &fake).expect_err("refused");
        assert!(
            matches!(err, TsmError::Interfered(ref g) if g == "2"),
            "{err}"
        );
        assert_eq!(entries(root.path()), 0);
    }

    #[test]
    fn a_directory_without_the_kernel_files_fails_clearly() {
        let root = tempfile::tempdir().expect("root");
        let err = report(root.path(), &[7; 64], &Kernel).expect_err("refused");
        assert!(err.to_string().contains("provider"), "{err}");
        assert_eq!(entries(root.path()), 0, "removed after");
    }
}

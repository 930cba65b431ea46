//! Where PINs come from: a file named by an option, else an environment variable, else a
//! prompt on the controlling terminal (`/dev/tty`, without echo). Never from argv. Without a
//! terminal the prompt fails at once with a message naming the other two sources.

use std::os::unix::ffi::OsStringExt;
use std::path::Path;

use zeroize::Zeroizing;

use super::{Failure, Outcome};

pub type Pin = Zeroizing<Vec<u8>>;

/// One PIN's sources, for messages.
pub struct PinSource<'a> {
    /// "user PIN", "SO PIN", ...
    pub what: &'static str,
    pub file: Option<&'a Path>,
    pub file_option: &'static str,
    pub env: &'static str,
    /// A PIN being set is asked for twice on a prompt.
    pub new: bool,
}

impl PinSource<'_> {
    pub fn read(&self) -> Outcome<Pin> {
        if let Some(path) = self.file {
            return from_file(path, self.what);
        }
        if let Some(value) = std::env::var_os(self.env).filter(|v| !v.is_empty()) {
            return Ok(Zeroizing::new(value.into_vec()));
        }
        self.prompt()
    }

    fn prompt(&self) -> Outcome<Pin> {
        let ask = |prompt: String| -> Outcome<Pin> {
            match rpassword::prompt_password(prompt) {
                Ok(p) if p.is_empty() => Err(Failure(format!("no {} entered", self.what))),
                Ok(p) => Ok(Zeroizing::new(p.into_bytes())),
                Err(e) if e.kind() == std::io::ErrorKind::Interrupted => Err(Failure("cancelled".into())),
                Err(e) => Err(Failure(format!(
                    "no {what} given: set {env} or pass {opt} FILE (no terminal to prompt on: {e})",
                    what = self.what,
                    env = self.env,
                    opt = self.file_option,
                ))),
            }
        };
        let pin = ask(format!("{}: ", capitalized(self.what)))?;
        if self.new {
            let again = ask(format!("{} again: ", capitalized(self.what)))?;
            if again != pin {
                return Err(Failure(format!("the two {} entries differ", self.what)));
            }
        }
        Ok(pin)
    }
}

/// The first line of FILE, without its line ending.
fn from_file(path: &Path, what: &str) -> Outcome<Pin> {
    let bytes = Zeroizing::new(
        std::fs::read(path)
            .map_err(|e| Failure(format!("cannot read the {what} from {}: {e}", path.display())))?,
    );
    let line = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let line = line.strip_suffix(b"\r").unwrap_or(line);
    if line.is_empty() {
        return Err(Failure(format!("the {what} file {} is empty", path.display())));
    }
    Ok(Zeroizing::new(line.to_vec()))
}

fn capitalized(s: &str) -> String {
    let mut c = s.chars();
    c.next().map(|f| f.to_uppercase().chain(c).collect()).unwrap_or_default()
}

pub fn user_pin(file: Option<&Path>) -> Outcome<Pin> {
    PinSource { what: "user PIN", file, file_option: "--pin-file", env: "ECM_HSM_PIN", new: false }.read()
}

pub fn so_pin(file: Option<&Path>) -> Outcome<Pin> {
    PinSource { what: "SO PIN", file, file_option: "--so-pin-file", env: "ECM_HSM_SO_PIN", new: true }.read()
}

pub fn new_user_pin(file: Option<&Path>) -> Outcome<Pin> {
    PinSource { what: "new user PIN", file, file_option: "--new-pin-file", env: "ECM_HSM_NEW_PIN", new: true }
        .read()
}

/// The SO PIN of an existing token, to log in with (asked once on a prompt).
pub fn so_login_pin(file: Option<&Path>) -> Outcome<Pin> {
    PinSource { what: "SO PIN", file, file_option: "--so-pin-file", env: "ECM_HSM_SO_PIN", new: false }.read()
}

/// Whether an SO PIN is at hand without a prompt: a file named, or `ECM_HSM_SO_PIN` set.
pub fn so_pin_given(file: Option<&Path>) -> bool {
    file.is_some() || std::env::var_os("ECM_HSM_SO_PIN").is_some_and(|v| !v.is_empty())
}

/// The PIN to set for a principal (asked twice on a prompt).
pub fn new_principal_pin(file: Option<&Path>) -> Outcome<Pin> {
    PinSource {
        what: "principal's new PIN",
        file,
        file_option: "--new-pin-file",
        env: "ECM_HSM_NEW_PIN",
        new: true,
    }
    .read()
}

//! How to trust the dev CA: the text `portico certs-dev` prints and the
//! one-line hint for the start-up banner.
//!
//! Owns: the wording and the per-platform commands (Debian/Ubuntu, macOS,
//! Windows, Firefox/NSS, Node).
//! Receives: the CA certificate path (made absolute here, so the commands
//! can be pasted from any directory).
//! Hands on: plain `String`s; printing is the caller's business. Pure: no
//! I/O besides reading the current directory to absolutise the path.

use std::path::{Path, PathBuf};

/// The CA path as an absolute path (falls back to the input).
fn absolute(ca_cert: &Path) -> PathBuf {
    std::path::absolute(ca_cert).unwrap_or_else(|_| ca_cert.to_path_buf())
}

/// Full instructions, several lines, for `portico certs-dev`.
pub fn trust_instructions(ca_cert: &Path) -> String {
    let ca = absolute(ca_cert);
    let ca = ca.display();
    format!(
        "\
The portico dev CA is {ca}
Browsers and tools trust the dev certificates once they trust this CA.
Only trust it on machines you develop on: its key can sign any name.

Debian / Ubuntu (system store: curl, PHP, Chrome on most setups):
  sudo cp '{ca}' /usr/local/share/ca-certificates/portico-dev-ca.crt && sudo update-ca-certificates

macOS (System keychain: Safari, Chrome, curl):
  sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain '{ca}'

Windows (elevated prompt; Edge, Chrome):
  certutil -addstore -f ROOT \"{ca}\"

Firefox (keeps its own store):
  - Settings > Privacy & Security > Certificates > View Certificates > Authorities > Import, tick \"identify websites\"; or
  - Windows/macOS: set security.enterprise_roots.enabled = true in about:config after the step above; or
  - Linux, with libnss3-tools installed, for each profile:
      certutil -d sql:$HOME/.mozilla/firefox/<profile> -A -t C,, -n 'portico dev CA' -i '{ca}'
    (Chrome/Chromium on Linux also reads the NSS db: certutil -d sql:$HOME/.pki/nssdb -A -t C,, -n 'portico dev CA' -i '{ca}')

Node.js (does not read the system store):
  export NODE_EXTRA_CA_CERTS='{ca}'
"
    )
}

/// One line for the start-up banner, with the command for the platform
/// portico runs on.
pub fn trust_one_liner(ca_cert: &Path) -> String {
    trust_one_liner_for(ca_cert, std::env::consts::OS)
}

/// [`trust_one_liner`] for a given `std::env::consts::OS` value.
pub fn trust_one_liner_for(ca_cert: &Path, os: &str) -> String {
    let ca = absolute(ca_cert);
    let ca = ca.display();
    let cmd = match os {
        "macos" => format!(
            "sudo security add-trusted-cert -d -r trustRoot -k /Library/Keychains/System.keychain '{ca}'"
        ),
        "windows" => format!("certutil -addstore -f ROOT \"{ca}\""),
        _ => format!(
            "sudo cp '{ca}' /usr/local/share/ca-certificates/portico-dev-ca.crt && sudo update-ca-certificates"
        ),
    };
    format!("trust it: {cmd}   (Firefox, Node and other OSes: portico certs-dev)")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn instructions_cover_every_platform_with_an_absolute_path() {
        let text = trust_instructions(Path::new("certs-dev/portico-dev-ca.pem"));
        let abs = absolute(Path::new("certs-dev/portico-dev-ca.pem"));
        assert!(abs.is_absolute());
        for needle in [
            "update-ca-certificates",
            "add-trusted-cert",
            "certutil -addstore -f ROOT",
            "Firefox",
            "libnss3-tools",
            "NODE_EXTRA_CA_CERTS",
        ] {
            assert!(text.contains(needle), "missing {needle}");
        }
        assert!(text.contains(&abs.display().to_string()));
    }

    #[test]
    fn one_liner_per_os() {
        let p = Path::new("/x/ca.pem");
        assert!(trust_one_liner_for(p, "linux").contains("update-ca-certificates"));
        assert!(trust_one_liner_for(p, "macos").contains("add-trusted-cert"));
        assert!(trust_one_liner_for(p, "windows").contains("certutil"));
        assert!(!trust_one_liner_for(p, "linux").contains('\n'));
    }
}

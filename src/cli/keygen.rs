//! `portico keygen`: a fresh Pusher/Reverb app id, key and secret, printed as
//! Laravel `.env` lines and as a portico `[[apps]]` block.

use rand::RngExt;

/// A generated app.
#[derive(Debug, Clone)]
pub struct Credentials {
    pub id: String,
    pub key: String,
    pub secret: String,
}

const ALNUM: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";

fn random_string(len: usize) -> String {
    let mut rng = rand::rng();
    (0..len)
        .map(|_| ALNUM[rng.random_range(0..ALNUM.len())] as char)
        .collect()
}

/// Id: six digits (as Reverb generates); key: 20 characters; secret: 32.
pub fn generate() -> Credentials {
    let id = rand::rng().random_range(100_000..1_000_000u32).to_string();
    Credentials {
        id,
        key: random_string(20),
        secret: random_string(32),
    }
}

impl Credentials {
    /// The text `portico keygen` prints.
    pub fn render(&self) -> String {
        format!(
            "# Laravel .env (Reverb broadcaster; the same values drive portico)\n\
             REVERB_APP_ID={id}\n\
             REVERB_APP_KEY={key}\n\
             REVERB_APP_SECRET={secret}\n\
             \n\
             # portico config (or set [pusher] env_file = \".env\" to read the lines above)\n\
             [[apps]]\n\
             id = \"{id}\"\n\
             key = \"{key}\"\n\
             secret = \"{secret}\"   # or \"${{REVERB_APP_SECRET}}\" to keep it in the environment\n",
            id = self.id,
            key = self.key,
            secret = self.secret,
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let a = generate();
        let b = generate();
        assert_eq!(a.id.len(), 6);
        assert_eq!(a.key.len(), 20);
        assert_eq!(a.secret.len(), 32);
        assert_ne!(a.secret, b.secret);
        assert!(a.render().contains(&format!("REVERB_APP_KEY={}", a.key)));
    }
}

//! Config loading never panics: any text is either a config or an error
//! that names a key.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|text: &str| {
    if let Err(e) = portico::Config::from_str_with_env(text, "fuzz.toml", &|_| None) {
        let _ = e.to_string();
    }
});

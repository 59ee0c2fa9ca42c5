//! The configuration file (`STARYER_CONFIG`): any text is read and checked, or refused
//! with a message, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = staryer::config::Config::from_toml(text);
    }
});

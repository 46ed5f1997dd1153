//! 发文字号: document numbers like 鲁财采〔2022〕14号.
use serde::{Deserialize, Serialize};

use super::DomainError;

/// A document number: 机关代字 + 〔year〕 + serial + 号.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
pub struct DocNumber {
    /// 机关代字, e.g. 鲁财采.
    pub prefix: String,
    /// Year, e.g. 2022.
    pub year: u32,
    /// Serial from 1, printed without leading zeros.
    pub serial: u32,
}

impl DocNumber {
    /// Parses a number, accepting 〔〕 [] 【】 （） () brackets and full-width digits.
    pub fn parse(input: &str) -> Result<DocNumber, DomainError> {
        let _ = input;
        unimplemented!("filled in by the domain work")
    }
}

/// Checks a 机关代字 on its own.
pub fn validate_prefix(prefix: &str) -> Result<(), DomainError> {
    let _ = prefix;
    unimplemented!("filled in by the domain work")
}

impl std::fmt::Display for DocNumber {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}〔{}〕{}号", self.prefix, self.year, self.serial)
    }
}

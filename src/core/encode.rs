//! Canonical encoding: postcard bytes, decoded strictly (no trailing bytes, and the bytes must be
//! exactly what re-encoding the value gives, so every value has one encoding and one hash).

use serde::{Serialize, de::DeserializeOwned};

/// Why bytes were refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DecodeError {
    #[error("malformed encoding: {0}")]
    Malformed(String),
    #[error("{0} trailing bytes after the encoded value")]
    TrailingBytes(usize),
    #[error("non-canonical encoding (re-encoding gives different bytes)")]
    NonCanonical,
    #[error("encoded value is {size} bytes, over the limit of {max}")]
    TooLarge { size: usize, max: usize },
}

/// Encode a value. Encoding plain data into a Vec cannot fail with postcard; should a type
/// ever refuse, the empty vector is returned, which no decoder accepts.
pub fn encode<T: Serialize + ?Sized>(value: &T) -> Vec<u8> {
    postcard::to_stdvec(value).unwrap_or_default()
}

/// Decode `bytes` (at most `max` long) into exactly one canonical value.
pub fn decode_canonical<T: Serialize + DeserializeOwned>(
    bytes: &[u8],
    max: usize,
) -> Result<T, DecodeError> {
    if bytes.len() > max {
        return Err(DecodeError::TooLarge {
            size: bytes.len(),
            max,
        });
    }
    let (value, rest): (T, &[u8]) =
        postcard::take_from_bytes(bytes).map_err(|e| DecodeError::Malformed(e.to_string()))?;
    if !rest.is_empty() {
        return Err(DecodeError::TrailingBytes(rest.len()));
    }
    if encode(&value) != bytes {
        return Err(DecodeError::NonCanonical);
    }
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn refuses_trailing_and_overlong() {
        let bytes = encode(&300u32);
        assert_eq!(decode_canonical::<u32>(&bytes, 16), Ok(300));
        let mut trailing = bytes.clone();
        trailing.push(0);
        assert_eq!(
            decode_canonical::<u32>(&trailing, 16),
            Err(DecodeError::TrailingBytes(1))
        );
        // 5 as an overlong varint: 0x85 0x00.
        assert!(decode_canonical::<u32>(&[0x85, 0x00], 16).is_err());
        assert!(matches!(
            decode_canonical::<u32>(&bytes, 1),
            Err(DecodeError::TooLarge { .. })
        ));
        assert!(matches!(
            decode_canonical::<u32>(&[], 16),
            Err(DecodeError::Malformed(_))
        ));
    }
}

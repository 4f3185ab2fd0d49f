//! Signing findings (detector) and verifying them (remediator) with a KMS HMAC key.
//!
//! The key (`KeyUsage: GENERATE_VERIFY_MAC`, `HMAC_SHA_256`) has a key policy that lets only the detector's role
//! call `GenerateMac` and only the remediator's role call `VerifyMac`. `GenerateMac` takes at most 4,096 bytes, so
//! what is signed is the SHA-256 digest of the finding's canonical JSON ([`crate::authenticity::signing_digest`]).
//! <https://docs.aws.amazon.com/kms/latest/developerguide/hmac.html>

use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::MacAlgorithmSpec;
use aws_sdk_kms::Client;

use super::error::classify;
use crate::iam::IamError;

/// The KMS HMAC key.
#[derive(Clone, Debug)]
pub struct MacKey {
    client: Client,
    key_id: String,
}

impl MacKey {
    /// The key `key_id` (ARN, id or alias) through `client`.
    pub fn new(client: Client, key_id: &str) -> MacKey {
        MacKey { client, key_id: key_id.to_owned() }
    }

    /// The key's id as configured.
    pub fn key_id(&self) -> &str {
        &self.key_id
    }

    /// `GenerateMac` over a digest.
    pub async fn sign(&self, digest: &[u8; 32]) -> Result<Vec<u8>, IamError> {
        let out = self
            .client
            .generate_mac()
            .key_id(&self.key_id)
            .mac_algorithm(MacAlgorithmSpec::HmacSha256)
            .message(Blob::new(digest.to_vec()))
            .send()
            .await
            .map_err(|e| classify("kms:GenerateMac", &e))?;
        Ok(out.mac().map(|b| b.as_ref().to_vec()).unwrap_or_default())
    }

    /// `VerifyMac` over a digest: `Ok(false)` when the MAC does not match (KMS answers `KMSInvalidMacException`).
    pub async fn verify(&self, digest: &[u8; 32], mac: &[u8]) -> Result<bool, IamError> {
        let result = self
            .client
            .verify_mac()
            .key_id(&self.key_id)
            .mac_algorithm(MacAlgorithmSpec::HmacSha256)
            .message(Blob::new(digest.to_vec()))
            .mac(Blob::new(mac.to_vec()))
            .send()
            .await;
        match result {
            Ok(out) => Ok(out.mac_valid()),
            Err(e) if e.as_service_error().is_some_and(|s| s.is_kms_invalid_mac_exception()) => Ok(false),
            Err(e) => Err(classify("kms:VerifyMac", &e)),
        }
    }
}

//! Turning SDK errors into trailguard's [`IamError`], which says whether a retry can help.

use aws_sdk_iam::error::{DisplayErrorContext, ProvideErrorMetadata, SdkError};

use crate::iam::{IamError, IamErrorKind};

/// Classifies a failed call by its error code: throttling and server faults are retryable, missing entities
/// and denied permissions are not. A response without a code (a proxy's 5xx page, a cut connection) is treated
/// as transient.
pub fn classify<E, R>(action: &str, error: &SdkError<E, R>) -> IamError
where
    E: ProvideErrorMetadata + std::error::Error + 'static,
    R: std::fmt::Debug,
{
    let kind = match error {
        SdkError::TimeoutError(_) | SdkError::DispatchFailure(_) | SdkError::ResponseError(_) => {
            IamErrorKind::Transient
        }
        SdkError::ServiceError(service) => match service.err().code() {
            Some("Throttling" | "ThrottlingException" | "RequestLimitExceeded" | "TooManyRequestsException") => {
                IamErrorKind::Throttled
            }
            Some("AccessDenied" | "AccessDeniedException" | "UnauthorizedOperation" | "AuthorizationError") => {
                IamErrorKind::AccessDenied
            }
            Some("NoSuchEntity" | "NotFound" | "ResourceNotFoundException" | "NotFoundException") => {
                IamErrorKind::NotFound
            }
            Some(
                "ServiceFailure"
                | "InternalFailure"
                | "InternalError"
                | "ServiceUnavailable"
                | "InternalErrorException",
            ) => IamErrorKind::Transient,
            None => IamErrorKind::Transient,
            Some(_) => IamErrorKind::Other,
        },
        _ => IamErrorKind::Other,
    };
    let message = match error {
        SdkError::ServiceError(service) => service.err().message().map(str::to_owned),
        _ => None,
    }
    .unwrap_or_else(|| DisplayErrorContext(error).to_string());
    IamError { kind, action: action.to_owned(), message }
}

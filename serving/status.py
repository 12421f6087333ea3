"""Errors as TF Serving reports them: one gRPC status code, mapped to an HTTP code for REST.

Both front ends of serving/server.py raise and catch `ServingError`, so a bad request gets the
same code and message over REST (`{"error": message}` with the HTTP status) and over gRPC.
"""

import grpc
import tensorflow as tf

Code = grpc.StatusCode

# The HTTP status TF Serving's REST API answers for each canonical code.
_HTTP = {
    Code.OK: 200, Code.CANCELLED: 499, Code.UNKNOWN: 500, Code.INVALID_ARGUMENT: 400,
    Code.DEADLINE_EXCEEDED: 504, Code.NOT_FOUND: 404, Code.ALREADY_EXISTS: 409,
    Code.PERMISSION_DENIED: 403, Code.RESOURCE_EXHAUSTED: 429, Code.FAILED_PRECONDITION: 400,
    Code.ABORTED: 409, Code.OUT_OF_RANGE: 400, Code.UNIMPLEMENTED: 501, Code.INTERNAL: 500,
    Code.UNAVAILABLE: 503, Code.DATA_LOSS: 500, Code.UNAUTHENTICATED: 401,
}
_BY_NUMBER = {code.value[0]: code for code in Code}


class ServingError(Exception):
  """A request that cannot be answered: a gRPC code and a message for the client."""

  def __init__(self, code: grpc.StatusCode, message: str):
    super().__init__(message)
    self.code = code
    self.message = message

  @property
  def http_status(self) -> int:
    return _HTTP.get(self.code, 500)


def invalid(message: str) -> ServingError:
  return ServingError(Code.INVALID_ARGUMENT, message)


def not_found(message: str) -> ServingError:
  return ServingError(Code.NOT_FOUND, message)


def from_tf_error(error: tf.errors.OpError) -> ServingError:
  """A TensorFlow runtime error (e.g. a failed assertion on `k`) as the client sees it."""
  message = error.message
  if 'assertion failed: [' in message:  # the text the signature's assertion wrote
    text = message.split('assertion failed: [', 1)[1].split(']', 1)[0]
  else:  # the reason, without "Graph execution error", the Python stack and the node name
    lines = [line.strip() for line in message.splitlines()
             if line.strip() and not line.startswith((' ', '\t'))
             and not line.startswith(('Graph execution error', 'Detected at node'))]
    text = (lines[-1] if lines else message).split('\t [[')[0].split(' [Op:')[0].strip()
  return ServingError(_BY_NUMBER.get(error.error_code, Code.UNKNOWN), text)

// Broker RPC, the wire codec between gateways and brokers: frames (frame.ts), the operation
// table with the payload of every BrokerClient call (operations.ts) and error payloads
// (error-payload.ts). Pure: no sockets; the transports live in the cluster room.
export {
  BROKER_RPC_VERSION,
  FRAME_HEADER_BYTES,
  FrameKind,
  FrameParser,
  MAX_FRAME_BYTES,
  decodeFrame,
  encodeFrame,
  type Frame,
  type FrameDecodeResult,
} from './frame.js';
export {
  OPERATIONS,
  decodeRequest,
  decodeResponse,
  encodeCancel,
  encodeRequest,
  encodeResponse,
  operationOf,
  type DecodedRequest,
  type OperationName,
  type RequestOf,
  type ResponseOf,
} from './operations.js';
export { decodeError, encodeError } from './error-payload.js';

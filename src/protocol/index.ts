// The protocol room's face: pure codecs shared by gateway and broker.
export { MessageIdCodec, type MessagePosition } from './message-id.js';
export { ReceiptHandleCodec, receiptHandleBrokerId, type Receipt } from './receipt-handle.js';
export { BlockCipher, deriveKey } from './block-cipher.js';
/** Broker RPC: the frames and operation table of the gateway–broker wire (cluster transports). */
export {
  BROKER_RPC_VERSION,
  FrameKind,
  FrameParser,
  MAX_FRAME_BYTES as MAX_BROKER_RPC_FRAME_BYTES,
  OPERATIONS as BROKER_RPC_OPERATIONS,
  decodeError as decodeBrokerRpcError,
  decodeFrame,
  decodeRequest as decodeBrokerRpcRequest,
  decodeResponse as decodeBrokerRpcResponse,
  encodeCancel as encodeBrokerRpcCancel,
  encodeError as encodeBrokerRpcError,
  encodeFrame,
  encodeRequest as encodeBrokerRpcRequest,
  encodeResponse as encodeBrokerRpcResponse,
  operationOf as brokerRpcOperationOf,
  type DecodedRequest as DecodedBrokerRpcRequest,
  type Frame,
  type OperationName as BrokerRpcOperation,
  type RequestOf as BrokerRpcRequest,
  type ResponseOf as BrokerRpcResponse,
} from './broker-rpc/index.js';
/** The sharding key's queue hash (broker and cluster gateway pick a keyed message's queue by it). */
export { shardingHash } from './sharding-hash.js';

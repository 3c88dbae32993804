// The protocol room's face: pure codecs shared by gateway and broker.
export { MessageIdCodec, type MessagePosition } from './message-id.js';
export { ReceiptHandleCodec, type Receipt } from './receipt-handle.js';
export { BlockCipher, deriveKey } from './block-cipher.js';

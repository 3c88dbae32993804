// The SigV4 headers (service `mq`, region `local`) of one call to a Wharf node, for the
// benchmarks' set-up and load: signed by aws4, as an independent client signs; host and
// content-length left for fetch to set.
import aws4 from 'aws4';

export function sigv4Headers(
  url: string,
  method: string,
  path: string,
  ak: string,
  sk: string,
  body?: string,
): Record<string, string> {
  const target = new URL(url);
  const signed = aws4.sign(
    {
      host: target.host,
      method,
      path,
      service: 'mq',
      region: 'local',
      headers: body === undefined ? {} : { 'content-type': 'application/json' },
      ...(body === undefined ? {} : { body }),
    },
    { accessKeyId: ak, secretAccessKey: sk },
  );
  const headers: Record<string, string> = {};
  for (const [k, v] of Object.entries(signed.headers as Record<string, string>)) {
    if (!['host', 'content-length'].includes(k.toLowerCase())) headers[k] = String(v);
  }
  return headers;
}

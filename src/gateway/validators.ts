// How the gateway validates requests against their route schemas: one Ajv of fastify's own
// compiler (@fastify/ajv-compiler) per kind of HTTP part. A query string is text, so its
// numbers are coerced from their digits (`?limit=10` validates against `type: integer`, and
// the OpenAPI document tells generated clients an integer); bodies, params and headers are
// never coerced (a JSON body's `"10"` is not a number, and a string field never takes one).
import { AjvCompiler, type ValidatorFactory } from '@fastify/ajv-compiler';

/** The Ajv options of fastify's `ajv` option: those of the parts that are not coerced. */
export const STRICT_AJV_OPTIONS = {
  coerceTypes: false,
  useDefaults: true,
  removeAdditional: false,
} as const;

/** Ajv instances by shared schemas and options, as fastify's default keeps them: fastify asks
 *  for a validator compiler per encapsulated plugin, and a new Ajv each time would compile
 *  every shared schema again (seconds of event loop for the gateway's routes). */
const compilers = AjvCompiler();

/** fastify's `schemaController.compilersFactory.buildValidator`. */
export const buildValidator: ValidatorFactory = (externalSchemas, options) => {
  const strict = compilers(externalSchemas, options);
  const coercing = compilers(externalSchemas, {
    ...options,
    mode: undefined, // Ajv's JSON Schema, as fastify's option (JTD is not coerced)
    customOptions: { ...STRICT_AJV_OPTIONS, ...options?.customOptions, coerceTypes: true },
  });
  return (route) => (route.httpPart === 'querystring' ? coercing : strict)(route);
};

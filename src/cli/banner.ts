// What `npm start` prints once listening: where, the operator token, a first command.

export function banner(node: {
  url: string;
  adminToken: string;
  adminTokenSource: string;
  redisUrl: string;
  redisSource: string;
}): string {
  const token = node.adminTokenSource === 'env' ? '(from WHARF_ADMIN_TOKEN)' : node.adminToken;
  return [
    '',
    `Wharf is listening on ${node.url}`,
    `  redis:          ${node.redisUrl} (${node.redisSource})`,
    `  operator token: ${token}`,
    `  API docs:       ${node.url}/docs`,
    '',
    'Create a tenant:',
    `  curl -s -X POST ${node.url}/admin/v1/tenants \\`,
    `    -H "authorization: Bearer ${node.adminTokenSource === 'env' ? '$WHARF_ADMIN_TOKEN' : node.adminToken}" \\`,
    `    -H 'content-type: application/json' -d '{"name":"acme"}'`,
    '',
  ].join('\n');
}

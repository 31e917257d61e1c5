// The app's decisions that need no browser: which message an error body carries (every
// service's shape), and why a flavor is offered or greyed out in the launch wizard.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { errorMessage } from './api.ts';
import { flavorProblem } from './pages/launch.tsx';

test('errorMessage reads Nova, Keystone, Placement and Glance bodies', () => {
  assert.equal(errorMessage(409, JSON.stringify({ conflictingRequest: { code: 409, message: 'Cannot stop while SHUTOFF' } })), 'Cannot stop while SHUTOFF');
  assert.equal(errorMessage(401, JSON.stringify({ error: { code: 401, title: 'Unauthorized', message: 'The request you have made requires authentication.' } })), 'The request you have made requires authentication.');
  assert.equal(errorMessage(400, JSON.stringify({ errors: [{ status: 400, detail: 'bad inventory', code: 'placement.undefined_code' }] })), 'bad inventory');
  assert.equal(errorMessage(400, JSON.stringify({ message: 'Image does not pass safety check<br /><br />\n\n\n', code: '400 Bad Request', title: 'Bad Request' })), 'Image does not pass safety check');
  assert.equal(errorMessage(502, '<html><body>Bad gateway</body></html>'), 'HTTP 502');
  assert.equal(errorMessage(500, ''), 'HTTP 500');
});

test('flavorProblem: image minimums, virtual size, then quota room', () => {
  const tiny = { id: '1', name: 'm1.tiny', vcpus: 1, ram: 512, disk: 1 };
  const big = { id: '3', name: 'm1.medium', vcpus: 2, ram: 4096, disk: 40 };
  const room = { instances: 10, cores: 20, ram: 51200 };
  assert.equal(flavorProblem(tiny, undefined, room, 1), undefined);
  assert.match(flavorProblem(tiny, { id: 'i', min_disk: 30 }, room, 1)!, /min_disk 30/);
  assert.equal(flavorProblem(big, { id: 'i', min_disk: 30 }, room, 1), undefined);
  assert.match(flavorProblem(tiny, { id: 'i', min_ram: 1024 }, room, 1)!, /1024 MB RAM/);
  assert.match(flavorProblem(tiny, { id: 'i', virtual_size: 2 * 1024 ** 3 }, room, 1)!, /virtual size/);
  // A flavor with disk 0 boots at the image's size: no disk check.
  assert.equal(flavorProblem({ ...tiny, disk: 0 }, { id: 'i', min_disk: 30, virtual_size: 2 * 1024 ** 3 }, room, 1), undefined);
  assert.match(flavorProblem(big, undefined, { instances: 10, cores: 3, ram: -1 }, 2)!, /3 vCPUs left/);
  assert.match(flavorProblem(tiny, undefined, { instances: 2, cores: -1, ram: -1 }, 3)!, /2 more instance/);
  assert.equal(flavorProblem(big, undefined, { instances: -1, cores: -1, ram: -1 }, 50), undefined);
});

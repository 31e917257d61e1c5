#!/usr/bin/python3
# The OAuth1 delegation flow driven by the real clients (python-keystoneclient's OS-OAUTH1
# managers and keystoneauth1's oauth1 plugin, both on oauthlib), against the all-in-one whose
# admin-openrc is in the environment. Exits non-zero on the first step that misbehaves.
import os
import sys

from keystoneauth1 import session
from keystoneauth1.extras import oauth1 as ks_oauth1
from keystoneauth1.identity import v3
from keystoneclient.v3 import client

auth_url = os.environ['OS_AUTH_URL']
admin = session.Session(auth=v3.Password(
    auth_url=auth_url, username=os.environ['OS_USERNAME'], password=os.environ['OS_PASSWORD'],
    project_name=os.environ['OS_PROJECT_NAME'], user_domain_name='Default', project_domain_name='Default'))
ks = client.Client(session=admin)
project_id = admin.get_project_id()

consumer = ks.oauth1.consumers.create(description='cli scenario')
request_token = ks.oauth1.request_tokens.create(consumer.id, consumer.secret, project_id)
member = ks.roles.find(name='member')
verifier = ks.oauth1.request_tokens.authorize(request_token.key, [member]).oauth_verifier
access_token = ks.oauth1.access_tokens.create(consumer.id, consumer.secret, request_token.key, request_token.secret, verifier)

delegated = session.Session(auth=ks_oauth1.V3OAuth1(
    auth_url, consumer_key=consumer.id, consumer_secret=consumer.secret,
    access_key=access_token.key, access_secret=access_token.secret))
ref = delegated.auth.get_access(delegated)
roles = sorted(ref.role_names)
if ref.project_id != project_id or roles != ['member', 'reader'] or ref.oauth_access_token_id != access_token.key:
    sys.exit(f'unexpected oauth1 token: project {ref.project_id}, roles {roles}, access token {ref.oauth_access_token_id}')
# the delegated token works against the API
resp = delegated.get(f'{auth_url}/auth/projects', raise_exc=False)
if resp.status_code != 200:
    sys.exit(f'oauth1 token refused on GET /v3/auth/projects: {resp.status_code} {resp.text}')
# revoked, it stops working
user_id = admin.get_user_id()
resp = admin.delete(f'{auth_url}/users/{user_id}/OS-OAUTH1/access_tokens/{access_token.key}', raise_exc=False)
if resp.status_code != 204:
    sys.exit(f'revoking the access token: {resp.status_code} {resp.text}')
ks.oauth1.consumers.delete(consumer.id)
print('oauth1 flow through keystoneclient/keystoneauth1: ok')

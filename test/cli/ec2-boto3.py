#!/usr/bin/python3
"""boto3 (Debian python3-boto3) against the Stratus EC2 endpoint: the issue's "what must work"
list with boto3's own waiters. Usage: ec2-boto3.py ENDPOINT ACCESS SECRET OTHER_ACCESS OTHER_SECRET"""
import base64
import sys

import boto3
from botocore.exceptions import ClientError

endpoint, access, secret, other_access, other_secret = sys.argv[1:6]


def client(a, s):
    return boto3.client('ec2', endpoint_url=endpoint, region_name='RegionOne', aws_access_key_id=a, aws_secret_access_key=s)


ec2 = client(access, secret)
other = client(other_access, other_secret)


def step(m):
    print('--- boto3:', m, flush=True)


def expect_error(code, fn, **kw):
    try:
        fn(**kw)
    except ClientError as e:
        got = e.response['Error']['Code']
        assert got == code, f'expected {code}, got {got}: {e}'
        print(f'    refused as expected ({code})')
        return
    raise AssertionError(f'expected {code}, call succeeded')


step('describe_regions / describe_availability_zones')
assert [r['RegionName'] for r in ec2.describe_regions()['Regions']] == ['RegionOne']
assert 'nova' in [z['ZoneName'] for z in ec2.describe_availability_zones()['AvailabilityZones']]

step('describe_images')
images = ec2.describe_images(Filters=[{'Name': 'name', 'Values': ['cirros']}])['Images']
assert len(images) == 1 and images[0]['State'] == 'available', images
ami = images[0]['ImageId']

step('create_key_pair / import_key_pair / describe_key_pairs')
kp = ec2.create_key_pair(KeyName='boto-k1')
assert 'PRIVATE KEY' in kp['KeyMaterial']
ec2.import_key_pair(KeyName='boto-k2', PublicKeyMaterial=open(sys.argv[6], 'rb').read())
assert {'boto-k1', 'boto-k2'} <= {k['KeyName'] for k in ec2.describe_key_pairs()['KeyPairs']}
expect_error('InvalidKeyPair.Duplicate', ec2.create_key_pair, KeyName='boto-k1')

step('run_instances MinCount=MaxCount=3, waiter instance_running')
r = ec2.run_instances(ImageId=ami, InstanceType='m1.tiny', MinCount=3, MaxCount=3, KeyName='boto-k1',
                      UserData='#!/bin/sh\necho boto\n', ClientToken='boto-run-1',
                      TagSpecifications=[{'ResourceType': 'instance', 'Tags': [{'Key': 'Name', 'Value': 'boto'}]}])
ids = [i['InstanceId'] for i in r['Instances']]
assert len(ids) == 3, r
again = ec2.run_instances(ImageId=ami, InstanceType='m1.tiny', MinCount=3, MaxCount=3, KeyName='boto-k1',
                          UserData='#!/bin/sh\necho boto\n', ClientToken='boto-run-1',
                          TagSpecifications=[{'ResourceType': 'instance', 'Tags': [{'Key': 'Name', 'Value': 'boto'}]}])
assert [i['InstanceId'] for i in again['Instances']] == ids, 'ClientToken did not make RunInstances idempotent'
ec2.get_waiter('instance_running').wait(InstanceIds=ids, WaiterConfig={'Delay': 1, 'MaxAttempts': 30})
res = ec2.describe_instances(Filters=[{'Name': 'tag:Name', 'Values': ['boto']}, {'Name': 'instance-state-name', 'Values': ['running']}])
assert len(res['Reservations']) == 1 and sorted(i['InstanceId'] for i in res['Reservations'][0]['Instances']) == sorted(ids), res
attr = ec2.describe_instance_attribute(InstanceId=ids[0], Attribute='userData')
assert base64.b64decode(attr['UserData']['Value']) == b'#!/bin/sh\necho boto\n'

step('paginator describe_instances (MaxResults 5)')
pages = ec2.get_paginator('describe_instances').paginate(PaginationConfig={'PageSize': 5})
assert sorted(i['InstanceId'] for p in pages for rv in p['Reservations'] for i in rv['Instances']) >= sorted(ids)

step('get_console_output')
out = ec2.get_console_output(InstanceId=ids[0])['Output']
assert 'FAKE CONSOLE OUTPUT' in out, out

step('stop / start / reboot with waiters')
ec2.stop_instances(InstanceIds=[ids[0]])
ec2.get_waiter('instance_stopped').wait(InstanceIds=[ids[0]], WaiterConfig={'Delay': 1, 'MaxAttempts': 30})
ec2.start_instances(InstanceIds=[ids[0]])
ec2.get_waiter('instance_running').wait(InstanceIds=[ids[0]], WaiterConfig={'Delay': 1, 'MaxAttempts': 30})
ec2.reboot_instances(InstanceIds=[ids[0]])
ec2.get_waiter('instance_status_ok').wait(InstanceIds=[ids[0]], WaiterConfig={'Delay': 1, 'MaxAttempts': 30})

step('create_tags / describe_tags / delete_tags')
ec2.create_tags(Resources=ids[:2], Tags=[{'Key': 'env', 'Value': 'boto'}])
tags = ec2.describe_tags(Filters=[{'Name': 'key', 'Values': ['env']}])['Tags']
assert sorted(t['ResourceId'] for t in tags) == sorted(ids[:2]), tags
ec2.delete_tags(Resources=[ids[0]], Tags=[{'Key': 'env'}])
assert [t['ResourceId'] for t in ec2.describe_tags(Filters=[{'Name': 'key', 'Values': ['env']}])['Tags']] == [ids[1]]

step('describe_instance_types / describe_account_attributes')
assert ec2.describe_instance_types(InstanceTypes=['m1.tiny'])['InstanceTypes'][0]['VCpuInfo']['DefaultVCpus'] == 1
attrs = {a['AttributeName']: a['AttributeValues'][0]['AttributeValue'] for a in ec2.describe_account_attributes()['AccountAttributes']}
assert attrs['max-instances'].isdigit(), attrs

step('create_image: what compute offers for server snapshots')
try:
    img = ec2.create_image(InstanceId=ids[0], Name='boto-snap')
    print('    image', img['ImageId'])
except ClientError as e:
    assert e.response['Error']['Code'] == 'UnsupportedOperation', e
    print('    UnsupportedOperation (compute answers 501 for createImage)')

step('errors: another project, wrong secret, malformed')
expect_error('InvalidInstanceID.NotFound', other.describe_instances, InstanceIds=[ids[0]])
expect_error('InvalidInstanceID.NotFound', other.terminate_instances, InstanceIds=[ids[0]])
expect_error('AuthFailure', client(access, 'wrong-secret').describe_regions)
expect_error('InvalidParameterValue', ec2.describe_instances, Filters=[{'Name': 'bogus-filter', 'Values': ['x']}])
expect_error('InvalidInstanceID.Malformed', ec2.describe_instances, InstanceIds=['i-nothex'])
expect_error('InvalidAMIID.NotFound', ec2.run_instances, ImageId='ami-00000000000000000', MinCount=1, MaxCount=1)

step('terminate_instances, waiter instance_terminated')
t = ec2.terminate_instances(InstanceIds=ids)
assert {i['CurrentState']['Name'] for i in t['TerminatingInstances']} == {'shutting-down'}, t
ec2.get_waiter('instance_terminated').wait(InstanceIds=ids, WaiterConfig={'Delay': 1, 'MaxAttempts': 30})
ec2.delete_key_pair(KeyName='boto-k1')
ec2.delete_key_pair(KeyName='boto-k2')
print('boto3 EC2 scenario: all steps passed')

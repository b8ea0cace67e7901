"""Initial schema: organizations, providers, users and tokens, patients, referrals, images,
audit events and idempotency records.

Revision ID: 0001
Revises:
Create Date: 2026-11-22
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('audit_events',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_user_id', sa.Uuid(), nullable=True, comment='null for the operator CLI'),
    sa.Column('actor_organization_id', sa.Uuid(), nullable=True),
    sa.Column('organization_id', sa.Uuid(), nullable=True, comment='organization that owns the record acted on'),
    sa.Column('action', sa.String(length=60), nullable=False, comment='e.g. referral.read, image.download'),
    sa.Column('outcome', sa.String(length=10), nullable=False, comment='success or denied'),
    sa.Column('object_type', sa.String(length=30), nullable=False),
    sa.Column('object_id', sa.Uuid(), nullable=True),
    sa.Column('referral_id', sa.Uuid(), nullable=True),
    sa.Column('ip_address', sa.String(length=45), nullable=True),
    sa.Column('user_agent', sa.String(length=200), nullable=True),
    sa.Column('details', sa.JSON(), nullable=True, comment='ids and codes only'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_audit_events'))
    )
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_audit_events_actor_organization_id'), ['actor_organization_id'], unique=False)
        batch_op.create_index('ix_audit_events_organization_id_id', ['organization_id', 'id'], unique=False)
        batch_op.create_index('ix_audit_events_referral_id_id', ['referral_id', 'id'], unique=False)

    op.create_table('organizations',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('name', sa.String(length=200), nullable=False),
    sa.Column('npi', sa.String(length=10), nullable=False, comment='type 2 (organization) NPI'),
    sa.Column('tax_id', sa.String(length=9), nullable=False, comment='EIN, nine digits without the dash'),
    sa.Column('address_line1', sa.String(length=200), nullable=False),
    sa.Column('address_line2', sa.String(length=200), nullable=True),
    sa.Column('city', sa.String(length=100), nullable=False),
    sa.Column('state', sa.String(length=2), nullable=False),
    sa.Column('zip', sa.String(length=9), nullable=False),
    sa.Column('phone', sa.String(length=20), nullable=True),
    sa.Column('requires_teledentistry_consent', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_organizations')),
    sa.UniqueConstraint('npi', name=op.f('uq_organizations_npi'))
    )
    op.create_table('providers',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('first_name', sa.String(length=100), nullable=False),
    sa.Column('last_name', sa.String(length=100), nullable=False),
    sa.Column('credentials', sa.String(length=50), nullable=True, comment='e.g. DDS, MS'),
    sa.Column('npi', sa.String(length=10), nullable=False, comment='type 1 (individual) NPI'),
    sa.Column('taxonomy', sa.String(length=10), nullable=False, comment='NUCC provider taxonomy code'),
    sa.Column('specialty', sa.Enum('general', 'endodontics', 'oral_surgery', 'periodontics', 'oral_radiology', 'oral_medicine', 'pediatric', 'orthodontics', 'prosthodontics', 'hygiene', name='specialty', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('license_states', sa.JSON(), nullable=False),
    sa.Column('accepting_referrals', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_providers_organization_id_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_providers')),
    sa.UniqueConstraint('organization_id', 'npi', name=op.f('uq_providers_organization_id_npi'))
    )
    with op.batch_alter_table('providers', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_providers_organization_id'), ['organization_id'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=True, comment='null only for platform admins'),
    sa.Column('email', sa.String(length=254), nullable=False, comment='stored lower-cased'),
    sa.Column('role', sa.Enum('admin', 'org_admin', 'staff', 'dentist', 'specialist', 'billing', name='role', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('provider_id', sa.Uuid(), nullable=True),
    sa.Column('active', sa.Boolean(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_users_organization_id_organizations')),
    sa.ForeignKeyConstraint(['provider_id'], ['providers.id'], name=op.f('fk_users_provider_id_providers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('email', name=op.f('uq_users_email'))
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_users_organization_id'), ['organization_id'], unique=False)

    op.create_table('api_tokens',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('token_hash', sa.String(length=64), nullable=False, comment='hex SHA-256 of the token'),
    sa.Column('prefix', sa.String(length=12), nullable=False, comment='first characters, to tell tokens apart'),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('last_used_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('expires_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('revoked_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_api_tokens_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_api_tokens')),
    sa.UniqueConstraint('token_hash', name=op.f('uq_api_tokens_token_hash'))
    )
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_api_tokens_user_id'), ['user_id'], unique=False)

    op.create_table('idempotency_records',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('user_id', sa.Uuid(), nullable=False),
    sa.Column('key', sa.String(length=255), nullable=False),
    sa.Column('request_fingerprint', sa.String(length=64), nullable=False, comment='SHA-256 of method, path and body'),
    sa.Column('response_status', sa.Integer(), nullable=True),
    sa.Column('response_body', sa.JSON(), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('completed_at', sa.DateTime(timezone=True), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_idempotency_records_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_idempotency_records')),
    sa.UniqueConstraint('user_id', 'key', name=op.f('uq_idempotency_records_user_id_key'))
    )
    op.create_table('patients',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False),
    sa.Column('first_name', sa.String(length=100), nullable=False),
    sa.Column('last_name', sa.String(length=100), nullable=False),
    sa.Column('birth_date', sa.Date(), nullable=False),
    sa.Column('sex', sa.Enum('F', 'M', 'U', name='sex', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('state', sa.String(length=2), nullable=False, comment='state of residence; drives reader licensure'),
    sa.Column('coverage_payer_id', sa.String(length=80), nullable=True),
    sa.Column('coverage_payer_name', sa.String(length=120), nullable=True),
    sa.Column('coverage_member_id', sa.String(length=80), nullable=True),
    sa.Column('coverage_group_number', sa.String(length=80), nullable=True),
    sa.Column('coverage_relationship', sa.Enum('self', 'spouse', 'child', 'other', name='subscriber_relationship', native_enum=False, create_constraint=True, length=32), nullable=True),
    sa.Column('created_by_user_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'], name=op.f('fk_patients_created_by_user_id_users')),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_patients_organization_id_organizations')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_patients'))
    )
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_patients_organization_id'), ['organization_id'], unique=False)

    op.create_table('referrals',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False, comment='the referring (capturing) organization'),
    sa.Column('patient_id', sa.Uuid(), nullable=False),
    sa.Column('referring_provider_id', sa.Uuid(), nullable=False),
    sa.Column('specialty', sa.Enum('general', 'endodontics', 'oral_surgery', 'periodontics', 'oral_radiology', 'oral_medicine', 'pediatric', 'orthodontics', 'prosthodontics', 'hygiene', name='referral_specialty', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False, comment='chief complaint / question for the reader'),
    sa.Column('teeth', sa.JSON(), nullable=False, comment='ADA Universal designations'),
    sa.Column('urgency', sa.Enum('routine', 'urgent', 'emergency', name='urgency', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('due_at', sa.DateTime(timezone=True), nullable=False, comment='response deadline from the urgency'),
    sa.Column('mode', sa.Enum('asynchronous', 'synchronous', name='mode', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('scope', sa.Enum('evaluate_only', 'evaluate_and_treat', name='scope', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('place_of_service', sa.String(length=2), nullable=False, comment='CMS place-of-service code of the physical capture site'),
    sa.Column('target_provider_id', sa.Uuid(), nullable=True, comment='reader named by the referring office, if any'),
    sa.Column('assigned_provider_id', sa.Uuid(), nullable=True),
    sa.Column('status', sa.Enum('draft', 'routed', 'accepted', 'reported', 'closed', 'unassigned', 'retake_requested', 'cancelled', name='referral_status', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('consent_given_by', sa.Enum('patient', 'guardian', name='consent_given_by', native_enum=False, create_constraint=True, length=32), nullable=True),
    sa.Column('consent_method', sa.Enum('verbal', 'written', name='consent_method', native_enum=False, create_constraint=True, length=32), nullable=True),
    sa.Column('consent_given_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('created_by_user_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('updated_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['assigned_provider_id'], ['providers.id'], name=op.f('fk_referrals_assigned_provider_id_providers')),
    sa.ForeignKeyConstraint(['created_by_user_id'], ['users.id'], name=op.f('fk_referrals_created_by_user_id_users')),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_referrals_organization_id_organizations')),
    sa.ForeignKeyConstraint(['patient_id'], ['patients.id'], name=op.f('fk_referrals_patient_id_patients')),
    sa.ForeignKeyConstraint(['referring_provider_id'], ['providers.id'], name=op.f('fk_referrals_referring_provider_id_providers')),
    sa.ForeignKeyConstraint(['target_provider_id'], ['providers.id'], name=op.f('fk_referrals_target_provider_id_providers')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_referrals'))
    )
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.create_index('ix_referrals_assigned_status_due', ['assigned_provider_id', 'status', 'due_at'], unique=False)
        batch_op.create_index('ix_referrals_org_status_id', ['organization_id', 'status', 'id'], unique=False)
        batch_op.create_index(batch_op.f('ix_referrals_patient_id'), ['patient_id'], unique=False)

    op.create_table('images',
    sa.Column('id', sa.Uuid(), nullable=False),
    sa.Column('referral_id', sa.Uuid(), nullable=False),
    sa.Column('organization_id', sa.Uuid(), nullable=False, comment='the organization that captured it'),
    sa.Column('kind', sa.Enum('periapical', 'bitewing', 'occlusal', 'panoramic', 'cephalometric', 'extraoral_posterior', 'complete_series', 'photo_intraoral', 'photo_extraoral', name='image_kind', native_enum=False, create_constraint=True, length=32), nullable=False),
    sa.Column('teeth', sa.JSON(), nullable=False),
    sa.Column('area', sa.String(length=2), nullable=True, comment='ADA oral cavity area code'),
    sa.Column('reason', sa.Text(), nullable=False, comment='clinical reason for the exposure'),
    sa.Column('captured_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('captured_by_provider_id', sa.Uuid(), nullable=False),
    sa.Column('capture_only', sa.Boolean(), nullable=False, comment='this office captured the image and did not interpret it'),
    sa.Column('retake_of_id', sa.Uuid(), nullable=True),
    sa.Column('retake_reason', sa.String(length=200), nullable=True),
    sa.Column('exposure_kvp', sa.Float(), nullable=True),
    sa.Column('exposure_ma', sa.Float(), nullable=True),
    sa.Column('exposure_time_ms', sa.Float(), nullable=True),
    sa.Column('file_format', sa.String(length=10), nullable=False, comment='decided from the bytes'),
    sa.Column('content_type', sa.String(length=40), nullable=False),
    sa.Column('size', sa.BigInteger(), nullable=False),
    sa.Column('sha256', sa.String(length=64), nullable=False),
    sa.Column('storage_backend', sa.String(length=10), nullable=False),
    sa.Column('storage_key', sa.String(length=512), nullable=False),
    sa.Column('original_filename', sa.String(length=255), nullable=True, comment='as sent; never a path'),
    sa.Column('width', sa.Integer(), nullable=True),
    sa.Column('height', sa.Integer(), nullable=True),
    sa.Column('dicom', sa.JSON(), nullable=True, comment='DICOM header fields read at intake'),
    sa.Column('uploaded_by_user_id', sa.Uuid(), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.ForeignKeyConstraint(['captured_by_provider_id'], ['providers.id'], name=op.f('fk_images_captured_by_provider_id_providers')),
    sa.ForeignKeyConstraint(['organization_id'], ['organizations.id'], name=op.f('fk_images_organization_id_organizations')),
    sa.ForeignKeyConstraint(['referral_id'], ['referrals.id'], name=op.f('fk_images_referral_id_referrals')),
    sa.ForeignKeyConstraint(['retake_of_id'], ['images.id'], name=op.f('fk_images_retake_of_id_images')),
    sa.ForeignKeyConstraint(['uploaded_by_user_id'], ['users.id'], name=op.f('fk_images_uploaded_by_user_id_users')),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_images')),
    sa.UniqueConstraint('storage_key', name=op.f('uq_images_storage_key'))
    )
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_images_organization_id'), ['organization_id'], unique=False)
        batch_op.create_index('ix_images_referral_id_id', ['referral_id', 'id'], unique=False)

    _make_audit_append_only()


def _make_audit_append_only() -> None:
    """The audit trail is evidence: the database itself refuses to change or remove a row."""
    if op.get_bind().dialect.name == "postgresql":
        op.execute(
            "CREATE FUNCTION audit_events_append_only() RETURNS trigger LANGUAGE plpgsql AS $$ "
            "BEGIN RAISE EXCEPTION 'audit events are append-only'; END $$"
        )
        op.execute(
            "CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events "
            "FOR EACH ROW EXECUTE FUNCTION audit_events_append_only()"
        )
    else:
        for verb in ("UPDATE", "DELETE"):
            op.execute(
                f"CREATE TRIGGER audit_events_no_{verb.lower()} BEFORE {verb} ON audit_events "
                "BEGIN SELECT RAISE(ABORT, 'audit events are append-only'); END"
            )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP TRIGGER IF EXISTS audit_events_append_only ON audit_events")
        op.execute("DROP FUNCTION IF EXISTS audit_events_append_only()")
    else:
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_update")
        op.execute("DROP TRIGGER IF EXISTS audit_events_no_delete")
    with op.batch_alter_table('images', schema=None) as batch_op:
        batch_op.drop_index('ix_images_referral_id_id')
        batch_op.drop_index(batch_op.f('ix_images_organization_id'))

    op.drop_table('images')
    with op.batch_alter_table('referrals', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_referrals_patient_id'))
        batch_op.drop_index('ix_referrals_org_status_id')
        batch_op.drop_index('ix_referrals_assigned_status_due')

    op.drop_table('referrals')
    with op.batch_alter_table('patients', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_patients_organization_id'))

    op.drop_table('patients')
    op.drop_table('idempotency_records')
    with op.batch_alter_table('api_tokens', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_api_tokens_user_id'))

    op.drop_table('api_tokens')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_users_organization_id'))

    op.drop_table('users')
    with op.batch_alter_table('providers', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_providers_organization_id'))

    op.drop_table('providers')
    op.drop_table('organizations')
    with op.batch_alter_table('audit_events', schema=None) as batch_op:
        batch_op.drop_index('ix_audit_events_referral_id_id')
        batch_op.drop_index('ix_audit_events_organization_id_id')
        batch_op.drop_index(batch_op.f('ix_audit_events_actor_organization_id'))

    op.drop_table('audit_events')

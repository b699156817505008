//! The tables, written by hand once for both backends (portable column types only).

diesel::table! {
    users (id) {
        id -> BigInt,
        username -> Text,
        email -> Text,
        password_hash -> Text,
        is_admin -> Bool,
        totp_secret -> Nullable<Text>,
        totp_enabled -> Bool,
        totp_last_step -> Nullable<BigInt>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    sessions (id) {
        id -> Text,
        user_id -> Nullable<BigInt>,
        state -> Text,
        expires_at -> Timestamp,
    }
}

diesel::table! {
    blogs (id) {
        id -> BigInt,
        handle -> Text,
        display_name -> Text,
        role_title -> Nullable<Text>,
        organisation -> Nullable<Text>,
        bio_markdown -> Text,
        bio_html -> Text,
        photo_media_id -> Nullable<BigInt>,
        links -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        manually_approves_followers -> Bool,
        articles_as_notes -> Bool,
        reply_policy -> Text,
        header_media_id -> Nullable<BigInt>,
        discoverable -> Bool,
    }
}

diesel::table! {
    blog_members (blog_id, user_id) {
        blog_id -> BigInt,
        user_id -> BigInt,
        role -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    media (id) {
        id -> BigInt,
        blog_id -> BigInt,
        uploaded_by -> Nullable<BigInt>,
        file_name -> Text,
        content_type -> Text,
        width -> Integer,
        height -> Integer,
        byte_size -> BigInt,
        alt_text -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    posts (id) {
        id -> BigInt,
        blog_id -> BigInt,
        slug -> Nullable<Text>,
        title -> Nullable<Text>,
        summary -> Nullable<Text>,
        body_markdown -> Text,
        body_html -> Text,
        status -> Text,
        author_id -> Nullable<BigInt>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        published_at -> Nullable<Timestamp>,
        edited_at -> Nullable<Timestamp>,
        replies_closed -> Bool,
        content_warning -> Nullable<Text>,
        pinned_at -> Nullable<Timestamp>,
        republished -> Integer,
    }
}

diesel::table! {
    post_tags (post_id, tag) {
        post_id -> BigInt,
        tag -> Text,
        name -> Text,
        position -> Integer,
    }
}

diesel::joinable!(sessions -> users (user_id));
diesel::joinable!(blog_members -> blogs (blog_id));
diesel::joinable!(blog_members -> users (user_id));
diesel::joinable!(media -> blogs (blog_id));
diesel::joinable!(posts -> blogs (blog_id));
diesel::joinable!(post_tags -> posts (post_id));

diesel::table! {
    instance_secrets (name) {
        name -> Text,
        value -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    jobs (id) {
        id -> BigInt,
        kind -> Text,
        payload -> Text,
        idempotency_key -> Nullable<Text>,
        partition_key -> Nullable<Text>,
        status -> Text,
        attempts -> Integer,
        max_attempts -> Integer,
        run_at -> Timestamp,
        locked_by -> Nullable<Text>,
        locked_until -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    actor_keys (owner) {
        owner -> Text,
        public_key_pem -> Text,
        private_key_pem -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    actors (id) {
        id -> BigInt,
        ap_id -> Text,
        domain -> Text,
        username -> Text,
        display_name -> Nullable<Text>,
        profile_url -> Nullable<Text>,
        icon_url -> Nullable<Text>,
        inbox -> Text,
        shared_inbox -> Nullable<Text>,
        public_key_id -> Nullable<Text>,
        public_key_pem -> Nullable<Text>,
        moved_to -> Nullable<Text>,
        fetched_at -> Timestamp,
        deleted_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    followers (blog_id, actor_id) {
        blog_id -> BigInt,
        actor_id -> BigInt,
        status -> Text,
        follow_ap_id -> Text,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    replies (id) {
        id -> BigInt,
        blog_id -> BigInt,
        post_id -> Nullable<BigInt>,
        ap_id -> Text,
        actor_id -> Nullable<BigInt>,
        parent_id -> Nullable<BigInt>,
        in_reply_to -> Text,
        url -> Nullable<Text>,
        content_html -> Text,
        summary -> Nullable<Text>,
        sensitive -> Bool,
        status -> Text,
        published_at -> Timestamp,
        edited_at -> Nullable<Timestamp>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
        visibility -> Text,
    }
}

diesel::table! {
    reactions (id) {
        id -> BigInt,
        post_id -> BigInt,
        actor_id -> BigInt,
        kind -> Text,
        ap_id -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    received_activities (ap_id) {
        ap_id -> Text,
        received_at -> Timestamp,
    }
}

diesel::table! {
    domain_blocks (domain) {
        domain -> Text,
        severity -> Text,
        reason -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    account_blocks (actor_ap_id) {
        actor_ap_id -> Text,
        reason -> Nullable<Text>,
        created_at -> Timestamp,
    }
}

diesel::table! {
    blog_blocks (blog_id, kind, target) {
        blog_id -> BigInt,
        kind -> Text,
        target -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    reports (id) {
        id -> BigInt,
        ap_id -> Text,
        actor_id -> Nullable<BigInt>,
        objects -> Text,
        content -> Nullable<Text>,
        status -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    post_mentions (post_id, acct) {
        post_id -> BigInt,
        acct -> Text,
        actor_id -> Nullable<BigInt>,
        href -> Text,
        profile_url -> Text,
        active -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(followers -> blogs (blog_id));
diesel::joinable!(followers -> actors (actor_id));
diesel::joinable!(replies -> posts (post_id));
diesel::joinable!(replies -> blogs (blog_id));
diesel::joinable!(replies -> actors (actor_id));
diesel::joinable!(reactions -> posts (post_id));
diesel::joinable!(reactions -> actors (actor_id));
diesel::joinable!(post_mentions -> posts (post_id));
diesel::joinable!(post_mentions -> actors (actor_id));

// The editorial workflow (issue 5): revisions, sign-off, scheduling, comments, presence,
// invitations, the publishing freeze and the audit log.

diesel::table! {
    post_revisions (id) {
        id -> BigInt,
        post_id -> BigInt,
        number -> Integer,
        author_id -> Nullable<BigInt>,
        author_name -> Text,
        kind -> Text,
        title -> Nullable<Text>,
        summary -> Nullable<Text>,
        body_markdown -> Text,
        tags -> Text,
        slug -> Nullable<Text>,
        content_hash -> Text,
        based_on -> Nullable<BigInt>,
        change_summary -> Text,
        coalesced -> Bool,
        created_at -> Timestamp,
        content_warning -> Nullable<Text>,
    }
}

diesel::table! {
    post_workflow (post_id) {
        post_id -> BigInt,
        stage -> Text,
        head_revision_id -> Nullable<BigInt>,
        live_revision_id -> Nullable<BigInt>,
        approval_id -> Nullable<BigInt>,
        submitted_by -> Nullable<BigInt>,
        submitted_at -> Nullable<Timestamp>,
        scheduled_for -> Nullable<Timestamp>,
        scheduled_revision_id -> Nullable<BigInt>,
        scheduled_by -> Nullable<BigInt>,
        held_at -> Nullable<Timestamp>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    post_approvals (id) {
        id -> BigInt,
        post_id -> BigInt,
        revision_id -> BigInt,
        approver_id -> Nullable<BigInt>,
        approver_name -> Text,
        content_hash -> Text,
        kind -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    blog_editorial (blog_id) {
        blog_id -> BigInt,
        owner_sign_off -> Bool,
        approval_delegate_id -> Nullable<BigInt>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    blog_invitations (id) {
        id -> BigInt,
        blog_id -> BigInt,
        email -> Text,
        role -> Text,
        token_hash -> Text,
        invited_by -> Nullable<BigInt>,
        created_at -> Timestamp,
        expires_at -> Timestamp,
        accepted_at -> Nullable<Timestamp>,
        accepted_by -> Nullable<BigInt>,
        revoked_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    editor_presence (post_id, user_id, client_id) {
        post_id -> BigInt,
        user_id -> BigInt,
        client_id -> Text,
        opened_at -> Timestamp,
        seen_at -> Timestamp,
    }
}

diesel::table! {
    post_comments (id) {
        id -> BigInt,
        post_id -> BigInt,
        author_id -> Nullable<BigInt>,
        author_name -> Text,
        body -> Text,
        quote -> Nullable<Text>,
        revision_id -> Nullable<BigInt>,
        created_at -> Timestamp,
        resolved_at -> Nullable<Timestamp>,
        resolved_by -> Nullable<BigInt>,
    }
}

diesel::table! {
    publishing_freezes (id) {
        id -> BigInt,
        message -> Text,
        started_at -> Timestamp,
        started_by -> Nullable<BigInt>,
        lifted_at -> Nullable<Timestamp>,
        lifted_by -> Nullable<BigInt>,
    }
}

diesel::table! {
    audit_log (id) {
        id -> BigInt,
        occurred_at -> Timestamp,
        actor_id -> Nullable<BigInt>,
        actor_name -> Text,
        source -> Text,
        action -> Text,
        blog_id -> Nullable<BigInt>,
        post_id -> Nullable<BigInt>,
        subject -> Nullable<Text>,
        details -> Text,
        address -> Nullable<Text>,
        prev_hash -> Text,
        hash -> Text,
    }
}

diesel::table! {
    mail_suppressions (address) {
        address -> Text,
        reason -> Text,
        soft_bounces -> Integer,
        suppressed_at -> Nullable<Timestamp>,
        last_error -> Nullable<Text>,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(post_revisions -> posts (post_id));
diesel::joinable!(post_workflow -> posts (post_id));
diesel::joinable!(post_approvals -> posts (post_id));
diesel::joinable!(post_comments -> posts (post_id));
diesel::joinable!(editor_presence -> posts (post_id));
diesel::joinable!(editor_presence -> users (user_id));
diesel::joinable!(blog_invitations -> blogs (blog_id));
diesel::joinable!(blog_editorial -> blogs (blog_id));

diesel::table! {
    newsletter_subscribers (id) {
        id -> BigInt,
        email -> Text,
        status -> Text,
        paused -> Bool,
        confirm_token_hash -> Nullable<Text>,
        confirm_expires_at -> Nullable<Timestamp>,
        lawful_basis -> Nullable<Text>,
        created_at -> Timestamp,
        confirmed_at -> Nullable<Timestamp>,
        updated_at -> Timestamp,
    }
}

diesel::table! {
    newsletter_subscriptions (subscriber_id, blog_id) {
        subscriber_id -> BigInt,
        blog_id -> BigInt,
        cadence -> Text,
        status -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    newsletter_sends (id) {
        id -> BigInt,
        blog_id -> BigInt,
        kind -> Text,
        post_id -> Nullable<BigInt>,
        period -> Text,
        fanout_cursor -> BigInt,
        recipients -> BigInt,
        opens -> BigInt,
        clicks -> BigInt,
        created_at -> Timestamp,
        finished_at -> Nullable<Timestamp>,
    }
}

diesel::table! {
    newsletter_received (subscriber_id, post_id) {
        subscriber_id -> BigInt,
        post_id -> BigInt,
        send_id -> BigInt,
        created_at -> Timestamp,
    }
}

diesel::joinable!(newsletter_subscriptions -> newsletter_subscribers (subscriber_id));
diesel::joinable!(newsletter_subscriptions -> blogs (blog_id));
diesel::joinable!(newsletter_sends -> blogs (blog_id));
diesel::joinable!(newsletter_received -> newsletter_subscribers (subscriber_id));
diesel::joinable!(newsletter_received -> posts (post_id));

diesel::allow_tables_to_appear_in_same_query!(
    users,
    sessions,
    blogs,
    blog_members,
    media,
    posts,
    post_tags,
    instance_secrets,
    jobs,
    actor_keys,
    actors,
    followers,
    replies,
    reactions,
    received_activities,
    domain_blocks,
    account_blocks,
    blog_blocks,
    reports,
    post_mentions,
    post_revisions,
    post_workflow,
    post_approvals,
    blog_editorial,
    blog_invitations,
    editor_presence,
    post_comments,
    publishing_freezes,
    audit_log,
    newsletter_subscribers,
    newsletter_subscriptions,
    newsletter_sends,
    newsletter_received,
    mail_suppressions,
);

diesel::allow_columns_to_appear_in_same_group_by_clause!(
    newsletter_subscribers::status,
    newsletter_subscriptions::status,
    newsletter_subscriptions::cadence,
);

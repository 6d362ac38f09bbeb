//! The identity operations that go through email: invitations, email verification and
//! password reset (a part of [`Auth`], split from `service.rs`).

use super::*;

impl Auth {
    fn link(&self, path: &str, token: &str) -> String {
        format!(
            "{}/{path}?token={token}",
            self.inner.config.link_base.trim_end_matches('/')
        )
    }

    /// Invites `email` into the admin's tenant with `role` (default `authenticated`): an invited
    /// user without a password, and a single-use token, valid for
    /// [`AuthConfig::invite_ttl`], sent to the address through the [`EmailSender`].
    ///
    /// The answer is the same whether or not the address has an account: an address that has one
    /// (in any organization) gets no invitation and no email, and nothing changes, so inviting
    /// is no way to learn which addresses have accounts. An invitation does not hold the address
    /// either: its owner may still sign up, which ends the invitation. The admin finds the
    /// invited member among the tenant's users (`status: invited`).
    pub async fn invite_member(
        &self,
        subject: &Subject,
        email: &str,
        name: Option<&str>,
        role: Option<&str>,
    ) -> Result<Invitation, AuthError> {
        let tenant = admin_tenant(subject)?.to_owned();
        self.limit_mail(subject)?;
        let email = email.trim();
        users::check_email(email)?;
        users::check_name(name)?;
        let role = role.unwrap_or(AUTHENTICATED);
        let mut tx = self.inner.db.begin().await?;
        users::lock_users(&mut tx).await?;
        roles::check_assignable(&mut tx, &tenant, role).await?;
        let answer = |expires: time::OffsetDateTime| Invitation {
            email: email.to_owned(),
            role: role.to_owned(),
            status: UserStatus::Invited.as_str(),
            expires_at: rfc3339(expires),
        };
        if users::by_email_in(&mut tx, email).await?.is_some() {
            tracing::info!(tenant = %tenant, "an invitation to an address that has an account: nothing sent");
            return Ok(answer(values::now() + self.inner.config.invite_ttl));
        }
        let user = users::insert(
            &mut tx,
            NewUser {
                tenant: &tenant,
                email,
                name,
                status: UserStatus::Invited,
                password_hash: None,
                email_verified_at: None,
            },
            role,
        )
        .await?;
        let (token, expires) = one_time::issue(
            &mut tx,
            &user,
            Purpose::Invite,
            self.inner.config.invite_ttl,
        )
        .await?;
        tx.commit().await?;
        let org = self.organization(subject).await?;
        let place = org.map(|o| format!(" to {}", o.name)).unwrap_or_default();
        let link = self.link("accept-invite", &token);
        let sent = self
            .send(Email {
                to: email.to_owned(),
                subject: format!("You are invited{place}"),
                text: format!(
                    "You have been invited{place}. Set your password here: {link}\n\nThe link works once and expires at {}.",
                    rfc3339(expires)
                ),
                html: None,
            })
            .await;
        if let Err(e) = sent {
            // Undo the invitation so that it can be tried again.
            let mut tx = self.inner.db.begin().await?;
            users::delete(&mut tx, user.id).await?;
            tx.commit().await?;
            return Err(e);
        }
        Ok(answer(expires))
    }

    /// Counts one email `subject` makes the deployment send ([`AuthConfig::mail_per_user`]).
    fn limit_mail(&self, subject: &Subject) -> Result<(), AuthError> {
        let Some(user) = &subject.user else {
            return Err(AuthError::Unauthorized);
        };
        self.inner
            .mailers
            .attempt(&format!("mail:{}", user.id))
            .map_err(AuthError::rate_limited)
    }

    async fn send(&self, email: Email) -> Result<(), AuthError> {
        self.inner.email.send(&email).await.map_err(|e| {
            tracing::error!(error = %e, "email not sent");
            AuthError::Internal
        })
    }

    /// Accepts an invitation: sets the password (and name), activates the user, marks the email
    /// verified (the link reached it) and signs in. The token works once.
    pub async fn accept_invite(
        &self,
        token: &str,
        password: &str,
        name: Option<&str>,
    ) -> Result<(UserInfo, NewSession), AuthError> {
        password::check_new_password(password)?;
        users::check_name(name)?;
        one_time::check(&self.inner.db, token, Purpose::Invite).await?;
        let pw = password.to_owned();
        let hash = self.blocking(move || password::hash_password(&pw)).await?;
        let mut tx = self.inner.db.begin().await?;
        let d = tx.dialect();
        let id = one_time::consume(&mut tx, token, Purpose::Invite).await?;
        let now = values::now();
        let mut q = Query::update();
        q.table(self.inner.db.table(USERS))
            .value(Alias::new("password_hash"), hash.as_str())
            .value(Alias::new("status"), UserStatus::Active.as_str())
            .value(Alias::new("email_verified_at"), ts_value(now, d))
            .value(Alias::new("updated_at"), ts_value(now, d))
            .and_where(Expr::col(Alias::new("id")).eq(uuid_value(id, d)))
            .and_where(Expr::col(Alias::new("status")).eq(UserStatus::Invited.as_str()));
        if let Some(n) = name {
            q.value(Alias::new("name"), n);
        }
        if tx.execute(&q).await? != 1 {
            return Err(AuthError::InvalidToken);
        }
        let user = users::by_id_in(&mut tx, id)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        let session = sessions::create(&mut tx, &user, &self.inner.config).await?;
        tx.commit().await?;
        Ok((self.signed_in(&user).await?, session))
    }

    /// Sends the signed-in user a link that verifies its email address.
    pub async fn request_email_verification(&self, subject: &Subject) -> Result<(), AuthError> {
        self.limit_mail(subject)?;
        let user = self.current(subject).await?;
        if user.email_verified {
            return Err(AuthError::Conflict(
                "the email address is already verified".into(),
            ));
        }
        let mut tx = self.inner.db.begin().await?;
        let (token, _) = one_time::issue(
            &mut tx,
            &user,
            Purpose::VerifyEmail,
            self.inner.config.verify_ttl,
        )
        .await?;
        tx.commit().await?;
        let link = self.link("verify-email", &token);
        self.send(Email {
            to: user.email.clone(),
            subject: "Verify your email address".into(),
            text: format!("Confirm this address by opening {link}\n\nThe link works once."),
            html: None,
        })
        .await
    }

    /// Verifies an email address with a token from [`Auth::request_email_verification`].
    pub async fn verify_email(&self, token: &str) -> Result<UserInfo, AuthError> {
        let mut tx = self.inner.db.begin().await?;
        let d = tx.dialect();
        let id = one_time::consume(&mut tx, token, Purpose::VerifyEmail).await?;
        let now = ts_value(values::now(), d);
        tx.execute(
            Query::update()
                .table(self.inner.db.table(USERS))
                .value(Alias::new("email_verified_at"), now.clone())
                .value(Alias::new("updated_at"), now)
                .and_where(Expr::col(Alias::new("id")).eq(uuid_value(id, d))),
        )
        .await?;
        let user = users::by_id_in(&mut tx, id)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        tx.commit().await?;
        // A verified address may link provider roles to the user: its subject changes.
        self.forget(Forget::User(user.id)).await;
        self.signed_in(&user).await
    }

    /// Sends a password reset link to `email` if an active account has it, in the background.
    /// Always succeeds (the answer tells nothing about which emails have accounts); limited per
    /// account and address.
    pub async fn request_password_reset(
        &self,
        email: &str,
        address: Option<IpAddr>,
    ) -> Result<(), AuthError> {
        self.limit_address(address)
            .map_err(AuthError::rate_limited)?;
        let account = email.trim().to_lowercase();
        if account.len() > 254 {
            return Ok(());
        }
        self.inner
            .per_account_address
            .attempt(&format!("reset:{account}"))
            .map_err(AuthError::rate_limited)?;
        let Some(user) = users::by_email(&self.inner.db, &account)
            .await?
            .filter(|u| u.status == UserStatus::Active)
        else {
            return Ok(());
        };
        // The token is written and the email sent in the background: the reply does the same
        // work (one lookup) whether or not the address has an account, so neither its answer
        // nor its time tells which do, and it waits for neither the database's write nor the
        // mail server.
        let this = self.clone();
        tokio::spawn(async move {
            if let Err(e) = this.send_reset(&user).await {
                tracing::error!(error = %e, "password reset email not sent");
            }
        });
        Ok(())
    }

    /// Issues a reset token for `user` and emails the link.
    async fn send_reset(&self, user: &UserRow) -> Result<(), AuthError> {
        let mut tx = self.inner.db.begin().await?;
        let (token, _) = one_time::issue(
            &mut tx,
            user,
            Purpose::ResetPassword,
            self.inner.config.reset_ttl,
        )
        .await?;
        tx.commit().await?;
        let link = self.link("reset-password", &token);
        let email = Email {
            to: user.email.clone(),
            subject: "Reset your password".into(),
            text: format!(
                "Someone asked to reset the password of this account. If it was you, choose a new one at {link}\n\nThe link works once. If it was not you, ignore this email."
            ),
            html: None,
        };
        self.send(email).await
    }

    /// Sets a new password with a reset token; every session and API key of the user ends.
    pub async fn reset_password(&self, token: &str, new: &str) -> Result<UserInfo, AuthError> {
        password::check_new_password(new)?;
        one_time::check(&self.inner.db, token, Purpose::ResetPassword).await?;
        let pw = new.to_owned();
        let hash = self.blocking(move || password::hash_password(&pw)).await?;
        let mut tx = self.inner.db.begin().await?;
        let id = one_time::consume(&mut tx, token, Purpose::ResetPassword).await?;
        let user = users::by_id_in(&mut tx, id)
            .await?
            .ok_or(AuthError::InvalidToken)?;
        if user.status != UserStatus::Active {
            return Err(AuthError::InvalidToken);
        }
        set_password(&mut tx, id, &hash).await?;
        // A reset is what a user does after a compromise: every session and API key ends.
        sessions::revoke_all(&mut tx, id).await?;
        api_keys::revoke_all(&mut tx, id).await?;
        tx.commit().await?;
        self.forget(Forget::User(id)).await;
        self.inner.per_account.clear(&user.email.to_lowercase());
        let roles = users::roles_of(&self.inner.db, &user.tenant, user.id).await?;
        tracing::info!(user = %user.id, "password reset; sessions revoked");
        Ok(user.info(roles))
    }
}

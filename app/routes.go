package app

import (
	"net/http"

	"github.com/gofiber/fiber/v2"
	"github.com/gofiber/fiber/v2/middleware/adaptor"
	"github.com/gofiber/fiber/v2/middleware/recover"
	"github.com/gofiber/fiber/v2/middleware/requestid"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/deepimageshub/imagehub/auth"
	"github.com/deepimageshub/imagehub/signedurl"
	"github.com/deepimageshub/imagehub/static"
)

// Public marks a route anyone may call, signed in or not.
const Public auth.Role = ""

// route is one entry of the route table: method, path, the least role that may
// call it, its handler, and what it takes as a body (its size limit, whether
// the handler streams it, its CSRF check: see bodyPolicy). Every route of the
// application is listed in routeTable; the authorization tests are generated
// from it.
type route struct {
	method  string
	path    string
	role    auth.Role
	handler fiber.Handler
	body    bodyPolicy
}

// routeTable lists every route with its minimum role and body policy.
// Object-level checks (someone else's image) happen in the handlers and
// answer 404.
func (s *Server) routeTable() []route {
	const (
		get    = fiber.MethodGet
		post   = fiber.MethodPost
		put    = fiber.MethodPut
		patch  = fiber.MethodPatch
		delete = fiber.MethodDelete
	)
	return []route{
		// Operations.
		{get, "/healthz", Public, s.healthz, noBody},
		{get, "/readyz", Public, s.readyz, noBody},

		// Pages.
		{get, "/", Public, s.homePage, noBody},
		{get, "/login", Public, s.loginPage, noBody},
		{post, "/login", Public, s.loginSubmit, pageForm},
		{get, "/signup", Public, s.signupPage, noBody},
		{post, "/signup", Public, s.signupSubmit, pageForm},
		{post, "/logout", Public, s.logoutSubmit, pageForm},
		{get, oidcLoginPath, Public, s.oidcLogin, noBody},
		{get, oidcCallbackPath, Public, s.oidcCallback, noBody},
		{get, "/account", auth.RoleContributor, s.accountPage, noBody},
		{post, "/account/tokens", auth.RoleContributor, s.tokenCreateSubmit, pageForm},
		{post, "/account/tokens/:id/revoke", auth.RoleContributor, s.tokenRevokeSubmit, pageForm},
		{post, "/account/password", auth.RoleContributor, s.passwordChangeSubmit, pageForm},
		{post, "/account/logout-all", auth.RoleContributor, s.logoutAllSubmit, pageForm},
		{get, "/admin/users", auth.RoleAdmin, s.adminUsersPage, noBody},
		{post, "/admin/users", auth.RoleAdmin, s.userCreateSubmit, pageForm},
		{post, "/admin/users/:id/role", auth.RoleAdmin, s.userRoleSubmit, pageForm},
		{get, "/admin/labels", auth.RoleAdmin, s.adminLabelsPage, noBody},
		{post, "/admin/labels", auth.RoleAdmin, s.labelCreateSubmit, pageForm},
		{post, "/admin/labels/:id", auth.RoleAdmin, s.labelUpdateSubmit, pageForm},
		{get, "/upload", auth.RoleContributor, s.uploadPage, noBody},
		{post, "/upload", auth.RoleContributor, s.uploadSubmit, pageUpload},
		{get, "/uploads", auth.RoleContributor, s.myUploadsPage, noBody},
		{get, "/uploads/:id/card", auth.RoleContributor, s.imageCardPartial, noBody},
		{get, "/images/:id", auth.RoleContributor, s.imagePage, noBody},
		{get, "/images/:id/inference", auth.RoleContributor, s.imageInferencePartial, noBody},
		{get, "/images/:id/thumb/:size", auth.RoleContributor, s.imageThumb, noBody},
		{get, "/campaigns", auth.RoleContributor, s.campaignsPage, noBody},
		{post, "/campaigns", auth.RoleAdmin, s.campaignCreateSubmit, pageForm},
		{get, "/campaigns/:id/progress", auth.RoleContributor, s.campaignProgressPartial, noBody},
		{get, "/review", auth.RoleReviewer, s.reviewPage, noBody},
		{get, "/review/stats", auth.RoleReviewer, s.reviewStatsPage, noBody},
		{get, "/review/stats.csv", auth.RoleReviewer, s.reviewStatsCSV, noBody},
		{get, "/admin/reviews/:id", auth.RoleAdmin, s.flaggedReviewPage, noBody},
		{get, "/admin/moderation", auth.RoleReviewer, s.moderationPage, noBody},
		{post, "/admin/moderation", auth.RoleReviewer, s.moderationSubmit, pageForm},
		{get, "/admin/models", auth.RoleAdmin, s.adminModelsPage, noBody},
		{post, "/admin/models", auth.RoleAdmin, s.modelSaveSubmit, pageForm},
		{get, "/datasets", auth.RolePremium, s.datasetsPage, noBody},
		{get, "/datasets/:id", auth.RolePremium, s.datasetPage, noBody},
		{get, "/datasets/:id/versions/:n", auth.RolePremium, s.versionPage, noBody},
		{get, "/datasets/:id/versions/:n/status", auth.RolePremium, s.versionStatusPartial, noBody},
		{get, "/datasets/:id/versions/:n/download", auth.RolePremium, s.versionDownload, noBody},
		{post, "/datasets/:id/versions/:n/exports", auth.RolePremium, s.exportCreateSubmit, pageForm},
		{get, "/datasets/:id/versions/:n/exports/:eid", auth.RolePremium, s.exportPartial, noBody},
		{get, "/datasets/:id/versions/:n/exports/:eid/file", auth.RolePremium, s.exportFile, noBody},
		{get, "/admin/datasets", auth.RoleAdmin, s.adminDatasetsPage, noBody},
		{post, "/admin/datasets", auth.RoleAdmin, s.datasetCreateSubmit, pageForm},
		{post, "/admin/datasets/:id/versions", auth.RoleAdmin, s.versionPublishSubmit, pageForm},
		{get, "/trainings", auth.RolePremium, s.trainingsPage, noBody},
		{post, "/trainings", auth.RolePremium, s.trainingCreateSubmit, pageForm},
		{get, "/trainings/:id", auth.RolePremium, s.trainingPage, noBody},
		{get, "/trainings/:id/status", auth.RolePremium, s.trainingStatusPartial, noBody},
		{get, "/admin/evaluations", auth.RoleAdmin, s.evaluationsPage, noBody},
		{post, "/admin/evaluations", auth.RoleAdmin, s.evaluationCreateSubmit, pageForm},
		{get, "/admin/evaluations/:id", auth.RoleAdmin, s.evaluationPage, noBody},
		{get, "/admin/webhooks", auth.RoleAdmin, s.adminWebhooksPage, noBody},
		{post, "/admin/webhooks", auth.RoleAdmin, s.webhookCreateSubmit, pageForm},
		{get, "/admin/webhooks/:id", auth.RoleAdmin, s.adminWebhookPage, noBody},
		{post, "/admin/webhooks/:id", auth.RoleAdmin, s.webhookUpdateSubmit, pageForm},
		{post, "/admin/webhooks/:id/delete", auth.RoleAdmin, s.webhookDeleteSubmit, pageForm},
		{post, "/admin/webhooks/:id/deliveries/:did/redeliver", auth.RoleAdmin, s.webhookRedeliverSubmit, pageForm},
		{get, "/insights", auth.RoleAdmin, s.insightsPage, noBody},
		{get, "/insights/models", auth.RoleAdmin, s.insightsModelsPage, noBody},
		{get, jobsUIPrefix, auth.RoleAdmin, s.jobsConsole, noBody},
		{get, jobsUIPrefix + "/*", auth.RoleAdmin, s.jobsConsole, noBody},
		{post, jobsUIPrefix + "/*", auth.RoleAdmin, s.jobsConsole, console},
		{put, jobsUIPrefix + "/*", auth.RoleAdmin, s.jobsConsole, console},
		{delete, jobsUIPrefix + "/*", auth.RoleAdmin, s.jobsConsole, console},

		// API v1 (API.md), described in openapi/ (TestOpenAPIRoutes keeps
		// the two in step) and rendered for people at /api/docs.
		{get, "/api/docs", Public, s.apiDocsPage, noBody},
		{get, "/api/v1/openapi.json", Public, s.apiOpenAPI, noBody},
		{post, "/api/v1/auth/signup", Public, s.apiSignup, apiJSON},
		{post, "/api/v1/auth/login", Public, s.apiLogin, apiJSON},
		{post, "/api/v1/auth/logout", Public, s.apiLogout, apiJSON},
		{get, "/api/v1/me", auth.RoleContributor, s.apiMe, noBody},
		{post, "/api/v1/me/password", auth.RoleContributor, s.apiPasswordChange, apiJSON},
		{post, "/api/v1/me/logout-all", auth.RoleContributor, s.apiLogoutAll, apiJSON},
		{get, "/api/v1/tokens", auth.RoleContributor, s.apiTokenList, noBody},
		{post, "/api/v1/tokens", auth.RoleContributor, s.apiTokenCreate, apiJSON},
		{delete, "/api/v1/tokens/:id", auth.RoleContributor, s.apiTokenRevoke, apiJSON},
		{get, "/api/v1/users", auth.RoleAdmin, s.apiUserList, noBody},
		{post, "/api/v1/users", auth.RoleAdmin, s.apiUserCreate, apiJSON},
		{put, "/api/v1/users/:id/role", auth.RoleAdmin, s.apiUserSetRole, apiJSON},
		{get, "/api/v1/labels", auth.RoleContributor, s.apiLabelList, noBody},
		{post, "/api/v1/labels", auth.RoleAdmin, s.apiLabelCreate, apiJSON},
		{post, "/api/v1/images", auth.RoleContributor, s.apiImageUpload, apiUpload},
		{get, "/api/v1/images", auth.RoleContributor, s.apiImageList, noBody},
		{get, "/api/v1/images/:id", auth.RoleContributor, s.apiImageGet, noBody},
		{get, "/api/v1/images/:id/file", auth.RoleContributor, s.apiImageFile, noBody},
		// A signed, expiring URL of one image for a model that fetches it
		// (Label Studio ML backends): the signature is the credential.
		{get, signedurl.Path + ":id", Public, s.signedImageFile, noBody},
		{get, "/api/v1/campaigns", auth.RoleContributor, s.apiCampaignList, noBody},
		{post, "/api/v1/campaigns", auth.RoleAdmin, s.apiCampaignCreate, apiJSON},
		{get, "/api/v1/campaigns/:id", auth.RoleContributor, s.apiCampaignGet, noBody},
		{get, "/api/v1/models", auth.RoleAdmin, s.apiModelList, noBody},
		{post, "/api/v1/models", auth.RoleAdmin, s.apiModelSave, apiJSON},
		{get, "/api/v1/datasets", auth.RolePremium, s.apiDatasetList, noBody},
		{post, "/api/v1/datasets", auth.RoleAdmin, s.apiDatasetCreate, apiJSON},
		{get, "/api/v1/datasets/:id", auth.RolePremium, s.apiDatasetGet, noBody},
		{post, "/api/v1/datasets/:id/versions", auth.RoleAdmin, s.apiVersionPublish, apiJSON},
		{get, "/api/v1/datasets/:id/versions/:n", auth.RolePremium, s.apiVersionGet, noBody},
		{get, "/api/v1/datasets/:id/versions/:n/download", auth.RolePremium, s.versionDownload, noBody},
		{post, "/api/v1/datasets/:id/versions/:n/exports", auth.RolePremium, s.apiExportCreate, apiJSON},
		{get, "/api/v1/datasets/:id/versions/:n/exports/:eid", auth.RolePremium, s.apiExportGet, noBody},
		{get, "/api/v1/datasets/:id/versions/:n/exports/:eid/file", auth.RolePremium, s.exportFile, noBody},
		{post, "/api/v1/review/next", auth.RoleReviewer, s.apiReviewNext, apiJSON},
		{post, "/api/v1/review/:id/renew", auth.RoleReviewer, s.apiReviewRenew, apiJSON},
		{post, "/api/v1/review/:id/release", auth.RoleReviewer, s.apiReviewRelease, apiJSON},
		{post, "/api/v1/review/:id/segment", auth.RoleReviewer, s.apiReviewSegment, apiReview},
		{post, "/api/v1/review/:id", auth.RoleReviewer, s.apiReviewSubmit, apiReview},
		{get, "/api/v1/stats/models", auth.RoleAdmin, s.apiModelStats, noBody},
		{get, "/api/v1/moderation", auth.RoleReviewer, s.apiModerationList, noBody},
		{post, "/api/v1/moderation/:id", auth.RoleReviewer, s.apiModerationDecide, apiJSON},
		{get, "/api/v1/insights/classes", auth.RoleAdmin, s.apiClassInsights, noBody},
		{post, "/api/v1/evaluations", auth.RoleAdmin, s.apiEvaluationCreate, apiJSON},
		{get, "/api/v1/evaluations", auth.RoleAdmin, s.apiEvaluationList, noBody},
		{get, "/api/v1/evaluations/:id", auth.RoleAdmin, s.apiEvaluationGet, noBody},
		{get, "/api/v1/trainings/recipes", auth.RolePremium, s.apiTrainingRecipes, noBody},
		{post, "/api/v1/trainings", auth.RolePremium, s.apiTrainingCreate, apiJSON},
		{get, "/api/v1/trainings", auth.RolePremium, s.apiTrainingList, noBody},
		{get, "/api/v1/trainings/:id", auth.RolePremium, s.apiTrainingGet, noBody},
		{get, "/api/v1/trainings/:id/artifact", auth.RolePremium, s.apiTrainingArtifact, noBody},
		{post, "/api/v1/trainings/:id/cancel", auth.RolePremium, s.apiTrainingCancel, apiJSON},
		// Trainers (docs/training.md): a trainer token reaches only these.
		{post, "/api/v1/trainer/lease", auth.RoleTrainer, s.apiTrainerLease, apiJSON},
		{post, "/api/v1/trainer/runs/:id/progress", auth.RoleTrainer, s.apiTrainerProgress, apiJSON},
		{put, "/api/v1/trainer/runs/:id/artifact", auth.RoleTrainer, s.apiTrainerArtifact, apiStream},
		{post, "/api/v1/trainer/runs/:id/fail", auth.RoleTrainer, s.apiTrainerFail, apiJSON},
		{get, "/api/v1/trainer/runs/:id/data/:split", Public, s.trainerData, noBody},
		{post, "/api/v1/imports", auth.RoleAdmin, s.apiImportCreate, apiUpload},
		{get, "/api/v1/imports/:id", auth.RoleAdmin, s.apiImportGet, noBody},
		{get, "/api/v1/jobs/:id", auth.RoleContributor, s.apiJobGet, noBody},
		{post, "/api/v1/webhooks", auth.RoleAdmin, s.apiWebhookCreate, apiJSON},
		{get, "/api/v1/webhooks", auth.RoleAdmin, s.apiWebhookList, noBody},
		{get, "/api/v1/webhooks/:id", auth.RoleAdmin, s.apiWebhookGet, noBody},
		{patch, "/api/v1/webhooks/:id", auth.RoleAdmin, s.apiWebhookUpdate, apiJSON},
		{delete, "/api/v1/webhooks/:id", auth.RoleAdmin, s.apiWebhookDelete, apiJSON},
		{get, "/api/v1/webhooks/:id/deliveries", auth.RoleAdmin, s.apiWebhookDeliveries, noBody},
		{post, "/api/v1/webhooks/:id/deliveries/:did/redeliver", auth.RoleAdmin, s.apiWebhookRedeliver, apiJSON},
	}
}

// MetricsHandler serves the Prometheus metrics: on the main listener, or on
// METRICS_ADDR's when that is set (cmd/imagehub serves it there).
func (s *Server) MetricsHandler() http.Handler {
	return promhttp.HandlerFor(s.registry, promhttp.HandlerOpts{})
}

// mount installs the middleware and every route of the table.
func (s *Server) mount() {
	a := s.app
	a.Use(recover.New(recover.Config{EnableStackTrace: true}))
	a.Use(requestid.New())
	a.Use(s.securityHeaders)
	a.Use(s.observe)
	a.Use(refuseEncoded)
	a.Get(static.Prefix+"*", static.Handler)
	// /metrics is public by design (API.md): with METRICS_ADDR it moves to
	// a listener of its own (MetricsHandler); otherwise bind the main port
	// to an internal network or protect /metrics at the load balancer.
	if s.cfg.MetricsAddr == "" {
		a.Get("/metrics", adaptor.HTTPHandler(s.MetricsHandler()))
	}
	// Who is calling is known from the headers alone; every route then
	// checks the role and CSRF before it reads any body.
	a.Use(s.identify)
	for _, r := range s.routes {
		a.Add(r.method, r.path, requireRole(r.role), s.csrfProtect(r.body), receiveBody(r.body), r.handler)
	}
}
